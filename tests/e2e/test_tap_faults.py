"""The host board's network mode (the firmware on the unix port) as a POS integrator finds it,
with real TCP clients (python-escpos' Network printer, socat, plain sockets that half-close as
CUPS and `nc -N` do) and a printer that fails on demand. Each test names the finding it covers
(issue: "A tap the POS cannot tell from a wire")."""
import json
import socket
import subprocess

import pytest
from escpos.printer import Network
from printer_loop import PrinterLoop

from tilltap_host.firmware_process import FirmwareProcess
from tilltap_host.netutil import free_port, wait_for
from tilltap_host.virtual_printer import Fault

JOB = b"\x1b@Coffee            3.50\nTotal             3.50\n\x1dV\x00"
STATUS = b"\x10\x04\x01"            # DLE EOT 1: the printer answers one byte



class Bench:
    """A virtual printer on its own event loop thread, and the firmware in front of it."""

    def __init__(self, tmp_path, config=None, printer_port=None):
        self.printers = PrinterLoop()
        self.tmp = tmp_path
        self.start_printer(printer_port)
        self.tap = FirmwareProcess(str(tmp_path), self.printer.port, config).start()

    @property
    def printer(self):
        return self.printers.printer

    def start_printer(self, port=None):
        # a printer's own buffer is small: a failing printer is noticed while the job goes on
        return self.printers.start(port, rcvbuf=16384)

    def stop_printer(self):
        self.printers.stop()

    def status(self):
        return self.tap.status()

    def close(self):
        self.tap.stop()
        self.printers.close()


@pytest.fixture
def bench(tmp_path):
    made = []

    def make(config=None, printer_port=None):
        made.append(Bench(tmp_path / str(len(made)), config, printer_port))
        return made[-1]

    yield make
    for b in made:
        b.close()


def send_job(port, data, half_close=True, timeout=20.0):
    """A POS job on its own connection: send, half-close (CUPS, nc -N), read until the tap
    closes. Returns (replies, error or None): the error a POS sees (reset, broken pipe)."""
    replies = bytearray()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return bytes(replies), None
                replies += chunk
    except OSError as e:          # reset, broken pipe: the POS knows the job failed
        return bytes(replies), e


def _settled(b, jobs):
    """The status once the tap served `jobs` jobs and capture parsed all it has."""
    status = b.status()
    if status.get("jobs") == jobs and status.get("capture", {}).get("pending") == 0:
        return status
    return None


# ---- 1, 2: the printer fails mid-job ------------------------------------------------------

@pytest.mark.parametrize("fault", [Fault(close_after=1), Fault(close_after=777),
                                   Fault(close_after=40000), Fault(reset_after=5000),
                                   Fault(read_delay=0.05, reset_after=3000)],
                         ids=["closes-at-1", "closes-at-777", "closes-at-40000", "resets-at-5000",
                              "slow-then-gone"])
def test_a_printer_failing_mid_job_fails_the_pos_job_and_the_next_job_prints(bench, fault):
    """Findings 1 and 2: no spin, the POS sees an error (never a clean end of a job that did
    not print), the receipts the printer did not take are counted, the next job prints."""
    b = bench()
    b.printer.faults.append(fault)
    # ~450 KB of receipts of 1.2 KB: more than a printer's socket buffers take in at once
    receipt = b"\x1b@" + b"Coffee            3.50\n" * 50 + b"Total          175.00\n\x1dV\x00"
    big = receipt * 380
    _, error = send_job(b.tap.listen_port, big)
    assert error is not None
    replies, error = send_job(b.tap.listen_port, STATUS + JOB)
    assert error is None and replies == b"\x12"
    wait_for(lambda: len(b.printer.jobs) == 2 and bytes(b.printer.jobs[1]) == STATUS + JOB,
          what="the next job")
    status = wait_for(lambda: _settled(b, 2), what="status")
    # the receipt the printer failed in is never stored as complete: not printed, or (capture
    # behind the burst into the printer's buffers) incomplete
    assert status["capture"]["not_printed"] + status["capture"]["incomplete"] >= 1
    assert status["receipts"] >= 2


def test_a_black_hole_printer_is_given_up_after_its_stall_time(bench):
    """Findings 1 and 2: a printer that takes nothing: after printer.stall_ms both sides are
    reset; the POS sees an error; the next job prints."""
    b = bench({"printer": {"stall_ms": 1500}})
    b.printer.faults.append(Fault(blackhole=True))
    _, error = send_job(b.tap.listen_port, JOB * 20000, timeout=60)
    assert error is not None
    replies, error = send_job(b.tap.listen_port, STATUS + JOB)
    assert error is None and replies == b"\x12"


# ---- 3, 4: half-close ---------------------------------------------------------------------

def test_a_pos_that_half_closes_gets_the_printers_late_answer(bench):
    """Finding 3: the answer to a status request comes 0.8 s after the POS half-closed: the
    tap keeps the POS side open for it (the POS then sees the end of the stream)."""
    b = bench()
    b.printer.faults.append(Fault(reply_delay=0.8))
    replies, error = send_job(b.tap.listen_port, JOB + STATUS)
    assert error is None and replies == b"\x12"


def test_socat_half_closes_and_reads_as_nc_does(bench):
    """Finding 3 with a client nobody here wrote: socat sends stdin, half-closes, prints what
    comes back until the tap closes."""
    b = bench()
    b.printer.faults.append(Fault(reply_delay=0.5))
    result = subprocess.run(["socat", "-t", "10", "-", "TCP:127.0.0.1:%d" % b.tap.listen_port],
                            input=JOB + STATUS, capture_output=True, timeout=30)
    assert result.returncode == 0 and result.stdout == b"\x12"
    wait_for(lambda: b.printer.jobs and bytes(b.printer.jobs[0]) == JOB + STATUS, what="job")


def test_python_escpos_network_prints_through_the_tap(bench):
    """The commonest POS library: every command a sendall, then shutdown and close."""
    b = bench()
    for n in range(3):
        p = Network("127.0.0.1", port=b.tap.listen_port, timeout=10)
        p.text("Receipt %d\nTotal 1.00\n" % n)
        p.qr("https://example.com/r/%d" % n, native=True)
        p.cut()
        p.close()
    wait_for(lambda: len(b.printer.jobs) == 3 and all(b"Total 1.00" in j for j in b.printer.jobs),
          what="three jobs")
    status = wait_for(lambda: b.status().get("receipts") == 3 and b.status(), what="receipts")
    assert status["capture"]["incomplete"] == 0


def test_a_job_that_asks_nothing_is_closed_without_a_grace(bench):
    """Finding 4: with answers allowed a minute (pos.reply_wait_ms), a job that asked nothing,
    and one whose question was answered, end as soon as their bytes went on: the POS sees the
    close long before the minute (the timeout below only guards a hang)."""
    b = bench({"pos": {"reply_wait_ms": 60000}})
    for job in (JOB, STATUS + JOB, JOB * 40):
        replies, error = send_job(b.tap.listen_port, job, timeout=30)
        assert error is None and replies == (b"\x12" if job.startswith(STATUS) else b"")


# ---- 5, 6: parser state and what belongs to a receipt ------------------------------------

def _spooled(b):
    """The records the tap spooled, read once it stopped."""
    from tilltap_fw.spool import Spool
    b.tap.stop()
    spool = Spool(b.tap.config["spool"]["dir"])
    return [json.loads(b"".join(parts)) for _, parts in spool.pending(1000)]


def test_a_job_cut_off_inside_an_image_leaves_the_next_jobs_untouched(bench):
    """Finding 5: the POS's connection ends inside a raster image's payload (the header says
    9600 bytes, 100 came); that receipt is stored incomplete, counted, and the next jobs'
    receipts are read from their first byte."""
    b = bench()
    cut_off = b"\x1b@Broken receipt\n\x1dv0\x00\x50\x00\x78\x00" + b"\xaa" * 100
    send_job(b.tap.listen_port, cut_off)
    for n in (1, 2):
        send_job(b.tap.listen_port, b"\x1b@Receipt %d\nTotal 1.00\n\x1dV\x00" % n)
    status = wait_for(lambda: _settled(b, 3), what="three jobs")
    assert status["capture"]["incomplete"] == 1
    records = _spooled(b)
    assert [(r["lines"], r["status"], r.get("reason")) for r in records] == [
        (["Broken receipt"], "incomplete", "cut_in_payload"),
        (["Receipt 1", "Total 1.00"], "complete", None),
        (["Receipt 2", "Total 1.00"], "complete", None)]


def test_a_drawer_kick_after_the_cut_belongs_to_the_receipt_it_follows(bench):
    """Finding 6: print, cut, open the drawer, then the next receipt, on one connection."""
    b = bench()
    kick = b"\x1bp\x00\x19\xfa"
    send_job(b.tap.listen_port, b"\x1b@Paid cash\n\x1dV\x00" + kick +
             b"\x1b@Paid card\n\x1dV\x00")
    wait_for(lambda: _settled(b, 1), what="the job")
    records = _spooled(b)
    assert [(r["lines"], r["drawer"]) for r in records] == [(["Paid cash"], True),
                                                            (["Paid card"], False)]


# ---- 7: the printer cannot be reached ------------------------------------------------------

def test_an_unreachable_printer_resets_the_pos_and_is_reported_until_it_is_back(bench):
    b = bench()
    port = b.printer.port
    b.stop_printer()
    _, error = send_job(b.tap.listen_port, JOB)
    assert error is not None                      # not a silent success
    status = wait_for(lambda: b.status().get("printer", {}).get("reachable") is False and
                   b.status(), what="unreachable in the status")
    assert status["health"] == "degraded"
    assert any(p.startswith("printer unreachable") for p in status["problems"])
    b.start_printer(port)
    replies, error = send_job(b.tap.listen_port, STATUS + JOB)
    assert error is None and replies == b"\x12"
    status = wait_for(lambda: b.status().get("printer", {}).get("reachable") and b.status(),
                   what="reachable again")
    assert not any(p.startswith("printer unreachable") for p in status["problems"])


def test_a_printer_name_that_does_not_resolve_is_a_clear_problem(bench):
    b = bench({"printer": {"host": "no-such-printer.invalid"}})
    _, error = send_job(b.tap.listen_port, JOB)
    assert error is not None
    status = wait_for(lambda: b.status().get("printer", {}).get("error") and b.status(),
                   what="the error")
    assert "no-such-printer.invalid" in status["printer"]["error"]


# ---- 8: several POS ------------------------------------------------------------------------

def test_several_pos_are_served_in_turn_and_a_quiet_open_connection_yields(bench):
    """Finding 8: POS A prints and keeps its connection open; five more connect meanwhile:
    none is refused, each job goes to the printer whole (never interleaved) once A has been
    quiet for pos.yield_ms."""
    b = bench({"pos": {"yield_ms": 500, "queue": 3}})
    port = b.tap.listen_port
    holder = socket.create_connection(("127.0.0.1", port), timeout=10)
    holder.sendall(b"\x1b@Holder\n\x1dV\x00")
    wait_for(lambda: b.printer.jobs and b"Holder" in b.printer.jobs[0], what="the first job")
    import concurrent.futures
    jobs = [b"\x1b@POS %d\n" % k + b"line\n" * 2000 + b"\x1dV\x00" for k in range(5)]
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        results = list(pool.map(lambda job: send_job(port, job, timeout=60), jobs))
    assert [error for _, error in results] == [None] * 5
    holder.close()
    got = sorted(bytes(j) for j in b.printer.jobs[1:])
    assert got == sorted(jobs)                     # each whole, on its own connection


def test_the_listen_address_is_configurable(bench):
    b = bench({"pos": {"bind": "127.0.0.1", "backlog": 2}})
    replies, error = send_job(b.tap.listen_port, STATUS + JOB)
    assert error is None and replies == b"\x12"


def test_a_port_in_use_is_a_clear_error_not_a_traceback(tmp_path):
    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(RuntimeError) as failed:
            FirmwareProcess(str(tmp_path), free_port(), listen_port=port).start()
        assert "cannot listen on 0.0.0.0:%d" % port in str(failed.value)
        assert "Traceback" not in str(failed.value)
    finally:
        taken.close()
