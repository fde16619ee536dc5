"""`tilltap tap --config config.json`, as a user runs it on a PC in front of their printer: the
installed command, a real POS client (python-escpos), a console to read and Ctrl-C to stop."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest
from escpos.printer import Dummy, Network
from printer_loop import PrinterLoop

from tilltap_host.netutil import free_port, wait_for

pytestmark = pytest.mark.e2e
TILLTAP = os.path.join(os.path.dirname(sys.executable), "tilltap")



class Console:
    """`tilltap tap` in its own session (as in a terminal), its output collected line by line."""

    def __init__(self, tmp_path, config):
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        self.data = tmp_path / "data"
        self.proc = subprocess.Popen(
            [TILLTAP, "tap", "--config", str(path)], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
            env=dict(os.environ, TILLTAP_DATA=str(self.data)))
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def text(self):
        return "\n".join(self.lines)

    def wait_for(self, words):
        return wait_for(lambda: words in self.text(), what="%r on the console:\n%s"
                     % (words, self.text()))

    def ctrl_c(self):
        """What a terminal does on Ctrl-C: SIGINT to the whole foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)
        code = self.proc.wait(30)
        self._reader.join(10)
        return code

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def printers():
    loop = PrinterLoop()
    yield loop
    loop.close()


@pytest.fixture
def console(tmp_path):
    made = []

    def run(config):
        made.append(Console(tmp_path, config))
        return made[-1]

    yield run
    for c in made:
        c.close()


def _receipt(printer):
    printer.hw("INIT")
    printer.set(bold=True)
    printer.text("CORNER CAFE\n")
    printer.set(bold=False)
    printer.text("Latte                 4.20\nTOTAL                 4.20\n")
    printer.qr("https://example.org/r/1001", native=True)
    printer.cut()


def test_a_user_runs_a_tap_prints_through_it_and_stops_it_with_ctrl_c(printers, console):
    printer = printers.start()
    pos_port = free_port()
    tap = console({"device_id": "pc-till1", "mode": "network",
                   "printer": {"host": "localhost", "port": printer.port},
                   "pos": {"listen_port": pos_port, "bind": "127.0.0.1"}})
    tap.wait_for("pc-till1 listening on 127.0.0.1:%d" % pos_port)

    pos = Network("127.0.0.1", port=pos_port)
    _receipt(pos)
    pos.close()
    expected = Dummy()
    _receipt(expected)
    wait_for(lambda: printer.jobs and printer.jobs[0] == expected.output, what="the job printed")
    tap.wait_for("job 1: %d bytes to the printer" % len(expected.output))

    spool = tap.data / "pc-till1" / "spool"
    status_file = tap.data / "pc-till1" / "status.json"
    wait_for(lambda: status_file.exists() and
          json.loads(status_file.read_text()).get("spool", {}).get("count") == 1,
          what="the receipt in the spool")
    assert spool.is_dir()
    assert tap.ctrl_c() == 0
    assert "stopped; 1 receipts waiting in the spool" in tap.text()
    assert "Traceback" not in tap.text()


def test_a_port_in_use_is_one_clear_line(printers, console):
    printer = printers.start()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        tap = console({"device_id": "pc-till1", "mode": "network",
                       "printer": {"host": "127.0.0.1", "port": printer.port},
                       "pos": {"listen_port": port, "bind": "127.0.0.1"}})
        assert tap.proc.wait(60) == 2
        tap._reader.join(10)
    assert "cannot listen on 127.0.0.1:%d" % port in tap.text()
    assert "Traceback" not in tap.text()


def test_an_unknown_printer_name_is_reported_and_resolved_again_for_each_job(console):
    pos_port = free_port()
    tap = console({"device_id": "pc-till1", "mode": "network",
                   "printer": {"host": "no-such-printer.invalid", "port": 9100},
                   "pos": {"listen_port": pos_port, "bind": "127.0.0.1"}})
    tap.wait_for("does not resolve now")
    tap.wait_for("listening on")
    with socket.create_connection(("127.0.0.1", pos_port), timeout=30) as s:
        try:
            s.sendall(b"\x1b@HELLO\n")
            s.shutdown(socket.SHUT_WR)
            ended = s.recv(10)
        except OSError as e:      # reset: the POS knows its job failed
            ended = e
    assert isinstance(ended, OSError), ended       # never a clean close
    tap.wait_for("printer unreachable")
    tap.wait_for("job 1: refused")
    assert tap.ctrl_c() == 0


def test_a_bad_configuration_is_refused_before_anything_starts(console):
    tap = console({"device_id": "pc-till1", "mode": "network",
                   "printer": {"host": "localhost", "port": 70000}})
    assert tap.proc.wait(30) != 0
    tap._reader.join(10)
    assert "printer.port: must be between" in tap.text()
    assert "Traceback" not in tap.text()
