"""The forwarding loop with fake ports: byte-exact both ways, back-pressure, fail-safe capture."""
import random

from fwtest import IS_MICROPYTHON, skip

from tilltap_fw.capture import END, PRINTER_FAILED, Capture
from tilltap_fw.tap import Tap


class Source:
    """A port that delivers the given chunks one per read (b"" = nothing this time)."""

    def __init__(self, chunks):
        self.chunks = list(chunks)
        self.written = bytearray()
        self.accept = None

    def readinto(self, mv):
        if not self.chunks:
            return 0
        chunk = self.chunks[0]
        n = min(len(chunk), len(mv))
        mv[:n] = chunk[:n]
        if n < len(chunk):
            self.chunks[0] = chunk[n:]
        else:
            self.chunks.pop(0)
        return n

    def write(self, buf, start, n):
        if self.accept is not None:
            n = min(n, self.accept())
        self.written.extend(memoryview(buf)[start:start + n])
        return n


class Clock:
    def __init__(self):
        self.now = 0

    def __call__(self):
        return self.now


class Ticker:
    """A microsecond clock that moves on by `step` at each reading: every step that finds
    nothing to forward comes after a quiet spell of the tap's _QUIET_US."""

    def __init__(self, step=1000):
        self.now = 0
        self.step = step

    def __call__(self):
        self.now += self.step
        return self.now


class ListSpool:
    def __init__(self):
        self.records = []

    def append(self, record):
        self.records.append(record)
        return len(self.records)


def _stream():
    random.seed(3)
    return bytes(random.getrandbits(8) for _ in range(5000))


def _chunks(data, sizes):
    out = []
    i = 0
    k = 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out.append(data[i:i + n])
        if k % 3 == 0:
            out.append(b"")
        i += n
        k += 1
    return out


def test_bytes_pass_both_ways_unchanged_with_a_slow_printer():
    data = _stream()
    replies = b"\x12\x00\x14\x16" * 50
    pos = Source(_chunks(data, [1, 700, 33, 512, 5]))
    printer = Source(_chunks(replies, [1, 4, 3]))
    random.seed(5)
    printer.accept = lambda: random.getrandbits(2) * 60      # 0 (busy) to 180 bytes a time
    clock = Clock()
    tap = Tap(pos, printer, capture=None, clock=clock)
    for _ in range(20000):
        tap.step()
        clock.now += 1
        if not pos.chunks and not printer.chunks and not tap.down.pending():
            break
    assert bytes(printer.written) == data
    assert bytes(pos.written) == replies
    assert tap.down.bytes_in == tap.down.bytes_out == len(data)


def test_printer_that_takes_nothing_stops_reads_from_the_pos():
    pos = Source([b"a" * 512] * 10)
    printer = Source([])
    printer.accept = lambda: 0
    tap = Tap(pos, printer, clock=Clock())
    for _ in range(100):
        tap.step()
    assert tap.down.bytes_in == 512       # one chunk held, nothing more read
    assert len(pos.chunks) == 9
    printer.accept = None
    for _ in range(100):
        tap.step()
    assert bytes(printer.written) == b"a" * 5120


class Exploding:
    """A capture whose second copy of what the printer took raises `error`."""
    requests = 0
    keep_pace = True

    def __init__(self, error):
        self.calls = 0
        self.error = error

    def read_from(self, buf):
        pass

    def took(self, start, n):
        self.calls += 1
        if self.calls == 2:
            raise self.error

    def work(self, budget_us=None, min_bytes=0, stop=None):
        return False

    def pressed(self):
        return False

    def has_work(self):
        return False

    def mark(self, kind):
        pass


def test_capture_failure_switches_capture_off_and_forwarding_goes_on():
    # the per-chunk copy catches without "as e" (its frame stays off the heap), so what is
    # reported is the class of the failure
    for error, reported in ((MemoryError("simulated"), MemoryError),
                            (ValueError("simulated"), Exception)):
        data = b"x" * 3000
        pos = Source(_chunks(data, [100]))
        printer = Source([])
        capture = Exploding(error)
        tap = Tap(pos, printer, capture=capture, clock=Clock(), clock_us=Ticker())
        for _ in range(200):
            tap.step()
        assert bytes(printer.written) == data
        assert tap.capture is None and tap.capture_errors == 1 and capture.calls == 2
        assert tap.last_error is reported


def test_idle_gap_ends_the_receipt_and_spools_it_with_its_raw_bytes():
    spool = ListSpool()
    capture = Capture(spool, lambda receipt, raw: repr((receipt.lines, bytes(raw))).encode())
    job1 = b"\x1b@Coffee 3.50\nTotal 3.50\n\x1dV\x00"
    job2 = b"\x1b@Tea 2.00\n"
    pos = Source([job1[:7], job1[7:], job2] + [b""] * 30)
    clock = Clock()
    tap = Tap(pos, Source([]), capture=capture, clock=clock, split_idle_ms=20, clock_us=Ticker())
    for _ in range(40):
        tap.step()
        clock.now += 1
    capture.close()
    assert spool.records == [repr((["Coffee 3.50", "Total 3.50"], job1)).encode(),
                             repr((["Tea 2.00"], job2)).encode()]


def test_listen_only_captures_without_forwarding():
    spool = ListSpool()
    capture = Capture(spool, lambda receipt, raw: bytes(raw))
    job = b"Listen 1.00\n\x1dV\x01"
    pos = Source([job])
    tap = Tap(pos, None, capture=capture, clock=Clock(), clock_us=Ticker())
    tap.step()
    capture.close()
    assert spool.records == [job]
    assert tap.down.bytes_in == tap.down.bytes_out == len(job)


class StarvedPrinter(Source):
    """A printer port whose first `fails` writes run out of memory (as a slice allocation)."""

    def __init__(self, fails):
        Source.__init__(self, [])
        self.fails = fails

    def write(self, buf, start, n):
        if self.fails:
            self.fails -= 1
            raise MemoryError("simulated")
        return Source.write(self, buf, start, n)


def test_out_of_memory_in_forwarding_releases_capture_and_never_escapes():
    job = b"\x1b@Shop\nItem 1.00\n\x1dV\x00"
    for fails in (1, 2, 5):
        spool = ListSpool()
        capture = Capture(spool, lambda receipt, raw: b"r")
        pos, printer = Source([job, job]), StarvedPrinter(fails)
        tap = Tap(pos, printer, capture=capture, clock=Clock(), clock_us=Ticker())
        for _ in range(20):
            tap.step()                      # never raises
        assert bytes(printer.written) == job + job, fails   # nothing lost, nothing doubled
        assert tap.capture is None and capture.parser is None   # its heap went to forwarding
        assert isinstance(tap.last_error, MemoryError)
        assert capture.reset().parser is not None               # and it can come back


def test_a_hold_is_never_an_idle_gap():
    """The printer takes nothing (paper out) for longer than the idle gap: the receipt in
    progress does not end, its bytes are not split."""
    spool = ListSpool()
    capture = Capture(spool, lambda receipt, raw: repr((receipt.lines, bytes(raw))).encode())
    job = b"\x1b@First line\n" + b"x" * 600 + b"\nLast line\n\x1dV\x00"
    pos, printer = Source([job]), Source([])
    printer.accept = lambda: 0
    clock = Clock()
    tap = Tap(pos, printer, capture=capture, clock=clock, split_idle_ms=20, clock_us=Ticker())
    for _ in range(200):                   # 200 ms held: ten idle gaps' worth
        tap.step()
        clock.now += 1
    printer.accept = None
    for _ in range(10):
        tap.step()
        clock.now += 1
    capture.close()
    assert bytes(printer.written) == job
    assert len(spool.records) == 1 and b"Last line" in spool.records[0]


def _forward_in_chunks(job, capture, after_each_step=None):
    """The job from a POS that has a 512-byte chunk ready at every step, a zero time budget:
    checks a chunk moved per step (and after_each_step(tap)); returns the tap."""
    pos, printer = Source([job[i:i + 512] for i in range(0, len(job), 512)]), Source([])
    tap = Tap(pos, printer, capture=capture, clock=Clock(), budget_us=0, clock_us=Ticker())
    steps = 0
    while pos.chunks:
        tap.step()
        steps += 1
        assert after_each_step is None or after_each_step(tap)
    assert bytes(printer.written) == job and steps == (len(job) + 511) // 512
    return tap


def test_capture_slower_than_the_line_never_slows_forwarding():
    """A zero time budget (capture parses one slice a step at most): forwarding still moves a
    chunk every step, and capture catches up from its backlog afterwards."""
    spool = ListSpool()
    capture = Capture(spool, lambda receipt, raw: bytes(raw), backlog=8192)
    job = (b"\x1b@" + b"Item line of a receipt  1.00\n" * 60 + b"\x1dV\x00") * 3
    _forward_in_chunks(job, capture)
    assert capture.pending() > 0           # behind, not lost
    capture.close()
    assert len(spool.records) == 3 and b"".join(spool.records) == job


def test_a_pressed_capture_keeps_pace_in_bytes_whatever_its_time_budget():
    """Once half the backlog waits, every step parses at least a chunk: a POS and a printer
    faster than the parser (here: a time budget of zero, as when the CPU is taken by others)
    slow forwarding to the parser's pace instead of losing receipts to a full backlog."""
    spool = ListSpool()
    capture = Capture(spool, lambda receipt, raw: repr(receipt.lines).encode(), backlog=2048)
    job = b"".join(b"\x1b@Receipt %d\nItem   1.00\nTotal   1.00\n\x1dV\x00" % k
                   for k in range(400))
    pos = Source(_chunks(job, [512]) + [b""] * 50)
    printer = Source([])
    tap = Tap(pos, printer, capture=capture, clock=Clock(), budget_us=0, clock_us=Ticker())
    for _ in range(2000):
        tap.step()
    capture.mark(END)                            # the job's end: the last cut ends its receipt
    capture.work()
    assert bytes(printer.written) == job
    assert capture.behind == 0 and capture.skipped_bytes == 0 and len(spool.records) == 400


def _parsed(tap, capture):
    """Bytes capture parsed so far: what the printer took, less what capture skipped or has
    yet to parse."""
    tap.count_skipped()
    return tap.down.bytes_out - capture.skipped_bytes - capture.pending()


def test_forwarding_first_never_parses_while_bytes_move_and_stores_the_overflow_as_behind():
    """capture.policy forwarding_first: a POS and a printer that never pause (every step moves
    a chunk) get a step each chunk, capture parses nothing meanwhile; past the backlog the
    receipt in progress is stored incomplete, capture_behind, and what did not fit is counted
    as skipped. In the quiet steps after the job, capture parses what it kept."""
    spool = ListSpool()
    capture = Capture(spool, lambda receipt, raw: (receipt.status, receipt.reason,
                                                   receipt.lines), backlog=2048,
                      keep_pace=False)
    job = b"".join(b"\x1b@Receipt %d\nItem   1.00\nTotal   1.00\n\x1dV\x00" % k
                   for k in range(400))
    # a chunk every step, never a quiet one; nothing parsed while bytes move
    tap = _forward_in_chunks(job, capture,
                             lambda tap: _parsed(tap, capture) == 0)
    # past the backlog capture only counts, and so does the tap, without a call per chunk
    assert capture.behind >= 1 and tap.down.taken is None
    for _ in range(200):                                  # quiet steps: capture catches up
        tap.step()
    assert tap.down.taken is not None and capture.skipped_bytes > 0
    capture.mark(END)
    capture.work()
    assert _parsed(tap, capture) == tap.down.bytes_out - capture.skipped_bytes
    statuses = [(status, reason) for status, reason, _ in spool.records]
    kept = [lines for status, _, lines in spool.records if status == "complete"]
    assert statuses.count(("incomplete", "capture_behind")) == 1
    assert statuses[-1] == ("incomplete", "capture_behind")    # the one the backlog cut off
    # the receipts before it are whole, in order, none merged; the rest were skipped, counted
    assert kept == [["Receipt %d" % k, "Item   1.00", "Total   1.00"] for k in range(len(kept))]
    assert capture.incomplete == 1 and len(kept) >= 2048 // 50 - 1
    assert len(spool.records) < 400


def test_bytes_capture_never_saw_are_counted_once_whatever_ends_the_count():
    """A burst past the backlog leaves the tap counting for capture. If the printer then
    fails holding part of a chunk, the held bytes go to capture (as not printed); if
    forwarding runs out of heap, capture is dropped and restarted. Either way every byte the
    printer took while capture was on is kept or counted skipped, once."""
    for ending in ("printer failed", "forwarding starved"):
        capture = Capture(ListSpool(), lambda receipt, raw: b"r", backlog=1024, keep_pace=False)
        job = b"\x1b@" + b"x" * (512 * 6 - 2)
        pos = Source([job[i:i + 512] for i in range(0, len(job), 512)])
        printer = Source([])
        tap = Tap(pos, printer, capture=capture, clock=Clock(), budget_us=0,
                  clock_us=Ticker(step=0))
        for _ in range(4):                   # 2 chunks kept, then a gap: the tap counts
            tap.step()
        assert tap.down.taken is None
        if ending == "printer failed":
            printer.accept = lambda: 100     # 100 bytes of the fifth chunk, then it fails
            tap.step()
            tap.mark(PRINTER_FAILED)
            tap.take_held()
            tap.mark(END)
            capture.work()
            assert capture.skipped_bytes == tap.down.bytes_in - 1024   # the backlog's 1 KiB
        else:
            failures = [MemoryError("no heap for the write")]

            def accept():
                if failures:
                    raise failures.pop()
                return 512
            printer.accept = accept
            tap.step()          # capture gives its heap back, the rest goes by without it
            assert tap.capture is None and tap.capture_errors == 1 and not pos.chunks
            tap.attach(capture.reset(resync=True))      # what the runner does
            # the 4 chunks before the failure: 2 kept (dropped by the restart), 2 counted
            assert capture.skipped_bytes == 4 * 512


def test_forwarding_first_parses_in_quiet_steps_and_keeps_every_receipt_of_a_paced_line():
    """The same policy on a line with pauses (a serial line's pace: a quiet step after each
    chunk): capture parses in the quiet steps, the backlog never fills, every receipt is
    complete."""
    spool = ListSpool()
    capture = Capture(spool, lambda receipt, raw: (receipt.status, receipt.lines), backlog=2048,
                      keep_pace=False)
    job = b"".join(b"\x1b@Receipt %d\nItem   1.00\nTotal   1.00\n\x1dV\x00" % k
                   for k in range(60))
    chunks = []
    for i in range(0, len(job), 64):
        chunks += [job[i:i + 64], b""]
    pos, printer = Source(chunks + [b""] * 20), Source([])
    # no time passes: capture parses because each read brought less than a chunk
    tap = Tap(pos, printer, capture=capture, clock=Clock(), budget_us=0,
              clock_us=Ticker(step=0))
    while pos.chunks:
        tap.step()
    capture.mark(END)
    capture.work()
    assert bytes(printer.written) == job
    assert capture.behind == 0 and capture.skipped_bytes == 0
    assert spool.records == [("complete", ["Receipt %d" % k, "Item   1.00", "Total   1.00"])
                             for k in range(60)]


def test_a_momentary_lull_in_a_burst_is_not_quiet_enough_to_parse():
    """A socket empty for a moment in a burst at LAN speed: no byte moved in this step, the
    last read brought a whole chunk, and less than the tap's quiet spell (1 ms) passed since;
    capture parses nothing (a slice at a chip's speed would delay more chunks than the lull
    lasted). Once the ports stay quiet, capture parses."""
    spool = ListSpool()
    capture = Capture(spool, lambda receipt, raw: b"r", backlog=4096, keep_pace=False)
    body = b"\x1b@" + b"Item line of a receipt  1.00\n" * 100
    job = body + b"\n" * (-(len(body) + 3) % 512) + b"\x1dV\x00"    # whole chunks only
    chunks = []
    for i in range(0, len(job), 512):
        chunks += [job[i:i + 512], b""]            # a lull after every chunk
    clock_us = Ticker(step=0)                      # no time passes: every lull is momentary
    pos, printer = Source(chunks), Source([])
    tap = Tap(pos, printer, capture=capture, clock=Clock(), clock_us=clock_us)
    lulls = []
    while pos.chunks:
        if not tap.step():
            # the caller sleeps in its poll instead of spinning, for at most the quiet spell
            lulls.append(tap.sleep_ms(10))
    assert bytes(printer.written) == job and capture.pending() == len(job)
    assert lulls and set(lulls) == {1}
    clock_us.step = 1000                           # now the line is quiet
    tap.step()
    assert len(job) - capture.pending() > 0
    while tap.step():
        pass
    assert capture.pending() == 0 and tap.sleep_ms(10) == 10
    capture.close()
    assert len(spool.records) == 1


def test_capture_in_a_quiet_step_yields_to_a_side_that_can_move_bytes():
    """Tap's ready (network mode: a poll of the job's sockets) is asked between capture's
    slices: once a side can move bytes, capture stops after the slice it is in, however much
    of its budget is left; while none can, it parses on within the budget."""
    for ready in (True, False):
        capture = Capture(ListSpool(), lambda receipt, raw: b"r", backlog=4096,
                          keep_pace=False)
        job = b"\x1b@" + b"Item line of a receipt  1.00\n" * 70
        asked = []

        def ready_now(answer=ready):
            asked.append(answer)
            return answer

        pos = Source([job[:2048]])
        tap = Tap(pos, Source([]), capture=capture, clock=Clock(), budget_us=10 ** 9,
                  clock_us=Ticker(), ready=ready_now)
        tap.step()                                 # forwards the chunks: nothing parsed
        while pos.chunks:
            tap.step()
        before = capture.pending()
        tap.step()                                 # a quiet step
        assert before > 1000 and capture.pending() == (before - 128 if ready else 0)
        assert asked and all(a is ready for a in asked)


def _socket_pair(listener, socket):
    client = socket.socket()
    client.connect(listener[1])
    server, _ = listener[0].accept()
    return client, server


def test_forwarding_through_sockets_allocates_no_heap_per_chunk():
    """On MicroPython, a step that forwards a chunk between two sockets and hands it to capture
    allocates at most one small object (the view capture copies through), and none while
    capture skips a burst it has no room for: no garbage to collect mid-job, no allocation to
    fail on a fragmented heap. (CPython has no heap counter: skipped there.)"""
    if not IS_MICROPYTHON:
        skip("MicroPython's gc.mem_alloc() counts the heap")
    import gc
    import socket

    from tilltap_fw.ports import SocketPort
    listen = socket.socket()
    for _ in range(50):          # the unix port's sockets have no getsockname(): pick a port
        address = socket.getaddrinfo("127.0.0.1", random.randrange(20000, 60000))[0][-1]
        try:
            listen.bind(address)
            break
        except OSError:
            continue
    listen.listen(2)
    pos, pos_tap = _socket_pair((listen, address), socket)
    printer_tap, printer = _socket_pair((listen, address), socket)
    capture = Capture(ListSpool(), lambda receipt, raw: b"r", backlog=2048, keep_pace=False)
    tap = Tap(SocketPort(pos_tap), SocketPort(printer_tap), capture=capture, clock=Clock(),
              clock_us=Clock())
    chunk = b"Item line of a receipt  1.00\n" * 17
    sink = bytearray(4096)
    printer.setblocking(False)     # the test's ends never wait: a hang would be the failure
    pos.setblocking(False)
    try:
        for backlog_state in ("keeping", "skipping"):
            gc.collect()
            before = gc.mem_alloc()
            steps = 20
            for _ in range(steps):
                pos.write(chunk)
                tap.step()
                printer.readinto(sink)
            per_step = (gc.mem_alloc() - before) / steps
            assert per_step <= (32 if backlog_state == "keeping" else 0), (backlog_state,
                                                                            per_step)
        assert tap.down.bytes_out == 2 * steps * len(chunk) and capture.skipped_bytes > 0
    finally:
        for sock in (pos, pos_tap, printer_tap, printer, listen):
            sock.close()


class FakeUart:
    """machine.UART as the ports use it: readinto(buf) of what is buffered, write(buf, off,
    len) (a MicroPython stream's form), txdone() once the TX ring is empty."""

    def __init__(self, rx=b""):
        self.rx = rx
        self.at = 0
        self.tx = bytearray()
        self.writes = []
        self.busy = False

    def readinto(self, buf):
        n = min(len(buf), len(self.rx) - self.at)
        buf[:n] = self.rx[self.at:self.at + n]
        self.at += n
        return n or None

    def write(self, buf, off, n):
        self.tx.extend(memoryview(buf)[off:off + n])
        self.writes.append(n)
        self.busy = True
        return n

    def txdone(self):
        done = not self.busy
        self.busy = False      # the ring empties between two steps
        return done


def test_uart_ports_forward_byte_exact_and_with_flow_control_only_into_an_empty_ring():
    """With flow control a UART port writes only into an empty TX ring and at most txbuf
    bytes (a printer holding CTS must never block the loop); without it, whole chunks."""
    from tilltap_fw.ports import UartPort
    job = bytes(range(256)) * 12
    for flow in (True, False):
        pos_uart, printer_uart = FakeUart(job), FakeUart()
        tap = Tap(UartPort(pos_uart), UartPort(printer_uart, txbuf=100, flow=flow),
                  clock=Clock())
        for _ in range(200):
            tap.step()
        assert bytes(printer_uart.tx) == job
        assert max(printer_uart.writes) == (100 if flow else 512)
