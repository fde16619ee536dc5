"""The tap: forwards POS -> printer and printer -> POS byte for byte, and hands capture what the
printer took.

Failure assumptions, written down first:
- The printer may stop taking bytes (paper out, CTS held, TCP window full) for any length of
  time; the POS may send anything in any chunking; either side may close or fail at any byte.
- Capture (parser, spool) may raise, run out of memory, or be far slower than the line (an
  ESP32 parses tens of KB/s, a TCP job arrives at LAN speed); flash writes hold the CPU for
  tens of milliseconds.
What the tap guarantees:
- Bytes are forwarded in order, unchanged, nothing added or dropped. When the printer cannot
  take more, the tap holds the chunk it has and stops reading from the POS: back-pressure goes
  to the POS (UART RTS, TCP window) instead of into an unbounded buffer. Replies from the
  printer go back to the POS the same way.
- Forwarding waits for capture at most a fixed budget per step: a step forwards at most one
  chunk (_CHUNK bytes) each way and copies what the printer took into capture's backlog (a
  memory copy; 4 KiB unless the board definition says more, runner.py). In a step that moved
  nothing, capture parses for BUDGET_US microseconds (in slices of 128 bytes: at least one),
  _HELD_BUDGETS budgets while the printer holds a chunk (it takes bytes at its print speed),
  once the POS is slower than the tap: its last read brought less than a whole chunk (a
  serial line, a POS between jobs), or no byte moved for _QUIET_US; while the printer holds a
  chunk, only once no byte moved for _QUIET_US (a printer about to take the rest, a fast
  network printer at a job's end, does not wait for a slice). A socket empty for a
  moment after whole chunks (a burst at LAN speed whose sender paused) is not slow: at a
  chip's parsing speed a slice there would delay more chunks than the lull lasted. Where the
  tap is given ready() (network mode: a poll of the job's sockets) capture stops at the first
  slice after which a side can move bytes: a printer that drains faster than the budget (a
  fast network printer, a large buffer) waits one slice, not the budget. Otherwise
  capture.policy decides (config.py; Capture's keep_pace; the README's "The tap's capture
  policy"):
  - auto (default): forwarding_first where the backlog holds a burst (256 KiB or more: the
    host board, a board definition with PSRAM), keep_pace with a chip's 4 KiB
    (capture.keeps_pace).
  - keep_pace: capture parses nothing until half the backlog waits; from then on
    each step parses for BUDGET_US and at least one chunk, so the backlog never overflows and
    no receipt is lost to a parser slower than a burst. The step's work is then bounded in
    bytes, not in time, on purpose: time budgets shrink when the CPU is shared (a PC under
    load, a flash write), bytes do not. On an ESP32 (~40 KB/s on command-dense text, ~1.5 MB/s
    on images) a chunk is ~13 ms at worst; forwarding then runs at the parser's pace, but only
    while both the POS and the printer outrun it: a receipt printer prints text at a few KB/s
    and raster at ~150 KB/s, slower than the parser, so printing itself is not slowed.
  - forwarding_first: capture parses nothing, ever, in a step that moved bytes (a budget of
    0 bytes); forwarding waits for capture only in quiet steps, as above. A burst longer than
    the backlog (at LAN speed: a job larger than the backlog plus the socket buffers) fills
    it: the receipt in progress is stored incomplete, "capture_behind", and the bytes up to
    the next job end, idle gap or ESC @ are skipped, counted (capture.py). While the backlog
    stays full (nothing parsed since) capture only counts, and so does the tap (bytes_out):
    it calls nothing per chunk then (_settle, count_skipped), so a burst that outruns capture
    costs about what forwarding with capture off costs (bench/forwarding_cost.py; figures in
    the README). Measured on the demo workload (README): with a 4 KiB backlog 20 of 94
    receipts incomplete and 8 lost; none lost only from a 256 KiB backlog.
  Past the backlog under either policy (a restart after a failure, a flash write longer than
  the backlog lasts on a serial line), capture stores the receipt in progress as incomplete,
  "capture_behind".
- An exception in capture switches capture off (counted; the runner restarts it) and
  forwarding carries on. Out of memory in forwarding itself, capture releases its heap first.
- Nothing here waits on the network: the uplink runs in its own thread (runner.py).
- Which side closed or failed is kept (Direction.eof, Direction.failed): network_mode.py ends
  a job from that, mirroring it to the other side.

Ports (ports.py) never block: readinto(buf) -> bytes read, 0 (none now), None (the peer closed
its sending side) or -1 (the connection failed); write(buf, start, n) -> bytes taken, 0 (none
now) or -1 (failed).

Frames: MicroPython takes a call's frame from the heap when its locals, stack slots and
exception handlers (3 words each, 6 with "except ... as e") pass 11 words (py/objfun.c; the
same count on the ESP32's 32-bit words), and every such call searches the heap for room. The
calls made per chunk or per loop turn (here, ports.py, network_mode.py, Capture.took, the
parser's per-slice calls, Runner.tick) keep under that: small helpers, few arguments, handlers
without "as e" where the exception is not needed (the per-chunk copy reports the class of
its failure, not the exception). tests/firmware/cpython/test_frames_on_the_stack.py checks
it with the unix port's -v -v (N_STATE, N_EXC_STACK).
"""
import gc

from .capture import IDLE
from .compat import const, ticks_diff, ticks_ms, ticks_us

_CHUNK = const(512)
BUDGET_US = const(2000)     # capture's time per step
_HELD_BUDGETS = const(4)    # ... while the printer cannot take the chunk held for it
_QUIET_US = const(1000)     # no byte moved for this long: the ports are quiet, capture parses
# made at import: when forwarding runs out of heap there may be none for a new exception
_FORWARDING_NEEDED_THE_HEAP = MemoryError("forwarding needed the heap capture held")


def new_buffers(chunk=_CHUNK):
    """The two read buffers a Tap forwards through (one per direction)."""
    return bytearray(chunk), bytearray(chunk)


class Direction:
    """One direction of the pass-through, with the chunk it could not forward yet.

    buf: the read buffer (a bytearray), allocated once by the caller and reused for every job.
    taken(n): called with the size of each piece the destination took (listen-only: each piece
    read), before start moves past it: the piece is buf[start:start + n] (one argument keeps
    the callback's frame off the heap: Frames, above). eof: the source closed its sending
    side; failed: "src" or "dst" when that side's connection failed.
    """

    def __init__(self, src, dst, buf, taken=None):
        self.src = src
        self.dst = dst
        self.buf = buf
        self.taken = taken
        self.start = 0
        self.end = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.last_read = 0     # bytes the last read brought: a whole buffer when more wait
        self.eof = False
        self.failed = None

    def pending(self):
        """Bytes read and not yet taken by the destination."""
        return self.end - self.start

    def pump(self):
        """Forward what the destination takes; read a new chunk only when none is held.
        Returns True when bytes moved."""
        moved = False
        if self.start < self.end:
            moved = self._drain()
            if self.start < self.end:
                return moved
        if self.eof or self.failed:
            return moved
        n = self.src.readinto(self.buf)
        if n is None:
            self.eof = True
        elif n < 0:
            self.failed = "src"
        elif n:
            self.last_read = n
            self.bytes_in += n
            self.start = 0
            self.end = n
            if self.dst is None:          # listen-only: nothing to forward to
                if self.taken is not None:
                    self.taken(n)
                self.start = n
                self.bytes_out += n
            else:
                self._drain()
            moved = True
        return moved

    def _drain(self):
        moved = False
        while self.start < self.end and not self.failed:
            w = self.dst.write(self.buf, self.start, self.end - self.start)
            if w < 0:
                self.failed = "dst"
            elif not w:
                break
            else:
                if self.taken is not None:
                    self.taken(w)
                self.start += w
                self.bytes_out += w
                moved = True
        return moved


class Tap:
    """The forwarding loop's state; step() is one iteration, never blocking.

    pos, printer: ports (see ports.py); printer is None in listen-only mode.
    capture: a Capture or None; clock: milliseconds (ticks_ms on the board, where it wraps);
    clock_us: microseconds (ticks_us). ready: callable -> True when a side can move bytes
    now, asked between capture's slices in a quiet step (None: the budget alone bounds them).
    split_idle_ms: no byte from the POS for this long while nothing is held marks idle_mark
    (capture.IDLE ends the receipt; capture.END also resets the parser, as a serial line's
    idle gap does). buffers: (POS -> printer, printer -> POS) read buffers from new_buffers(),
    kept by the caller so that a new job allocates nothing big on a heap capture may have
    exhausted. last_error: the exception (or its class) that switched capture off (kept as
    is: formatting it in the handler could itself run out of memory). replies: how many times
    answers came
    from the printer (network_mode waits for as many as capture saw requests).
    """

    def __init__(self, pos, printer, capture=None, clock=ticks_ms, split_idle_ms=3000,
                 idle_mark=IDLE, buffers=None, budget_us=BUDGET_US, clock_us=ticks_us,
                 ready=None):
        down_buf, up_buf = buffers or new_buffers()
        self.down = Direction(pos, printer, down_buf)
        self.up = Direction(printer, pos, up_buf) if printer is not None else None
        self.capture = None
        self._counting_from = None     # bytes_out when capture began only counting (_settle)
        self.attach(capture)
        self._clock = clock
        self._split_idle_ms = split_idle_ms
        self._idle_mark = idle_mark
        self._budget_us = budget_us
        self.ready = ready
        self.last_byte = clock()       # the last time a byte moved either way
        self._clock_us = clock_us
        self._moved_us = clock_us()    # ... in microseconds
        self._split_due = False
        self.capture_errors = 0
        self.last_error = None
        self.replies = 0

    def step(self):
        """Forward both ways, let capture work, mark an idle gap.

        Returns True when the caller should call again at once (bytes moved, or capture parsed
        and has bytes left); False lets it sleep until a port is ready or a poll time passed.
        """
        down = self._pump(self.down)
        moved = down
        if self.up is not None and self._pump(self.up):
            moved = True
            self.replies += 1
        now = self._clock()
        if moved:
            self.last_byte = now
            self._moved_us = self._clock_us()
            self._split_due = self._split_due or down
        elif self._split_due and not self.down.pending() and \
                ticks_diff(now, self.last_byte) >= self._split_idle_ms:
            # a hold (printer full, CTS low, paper out) is never an idle gap
            self._split_due = False
            self.mark(self._idle_mark)
        capture = self.capture
        if capture is None or (moved and not capture.keep_pace):
            return moved                 # forwarding_first: nothing to do while bytes move
        return self._capture_step(moved) or moved

    def sleep_ms(self, longest):
        """How long the caller may sleep, when a step moved nothing, before the next step:
        longest, or _QUIET_US while capture has bytes to parse once the ports are quiet
        (step() returns False then rather than have the caller spin on empty reads)."""
        capture = self.capture
        if capture is not None and capture.has_work():
            return _QUIET_US // 1000
        return longest

    def attach(self, capture):
        """Capture from now on (None: off): at construction, and when the runner restarted it."""
        self._settle()
        self.capture = capture
        self.down.taken = None            # capture off: no call per chunk
        if capture is not None:
            capture.read_from(self.down.buf)
            self.down.taken = self._taken

    def count_skipped(self):
        """Hands capture what the printer took while capture only counted (a burst outran it
        and filled its backlog: the tap counts then, without a call per chunk); status
        readers call it first."""
        if self._counting_from is not None:
            if self.capture is not None:
                self.capture.skipped_bytes += self.down.bytes_out - self._counting_from
            self._counting_from = self.down.bytes_out

    def _settle(self):
        # before capture parses or learns of an event: it sees every piece again from here
        if self._counting_from is not None:
            self.count_skipped()
            self._counting_from = None
            if self.capture is not None:
                self.down.taken = self._taken

    def _capture_step(self, moved):
        """Capture's share of a step (see the module docstring); True if it parsed and has
        bytes left."""
        capture = self.capture
        if capture.pressed():               # never, under forwarding_first
            return self._capture_work(self._budget_us, _CHUNK, None)
        pos_side = self.down
        held = pos_side.pending()
        if moved or ((held or pos_side.last_read == len(pos_side.buf)) and
                     ticks_diff(self._clock_us(), self._moved_us) < _QUIET_US):
            # it parses once the ports are quiet; till then the loop may sleep in its poll
            # (a byte wakes it) instead of spinning on empty reads
            return False
        # a printer that held a chunk for the quiet spell takes bytes at its print speed
        return self._capture_work(self._budget_us * (_HELD_BUDGETS if held else 1), 0,
                                  self.ready)

    def _capture_work(self, budget_us, min_bytes, stop):
        # the only call of a step that parses, and the only one that needs "as e": a parser
        # failure is reported as it is
        self._settle()
        try:
            return self.capture.work(budget_us, min_bytes, stop)
        except Exception as e:   # noqa: BLE001 -- capture must never stop printing
            self._capture_failed(e)
            return False

    def mark(self, kind):
        """Tell capture what happened after the bytes the printer took so far."""
        self._settle()
        if self.capture is not None:
            try:
                self.capture.mark(kind)
            except Exception as e:   # noqa: BLE001
                self._capture_failed(e)

    def outstanding(self):
        """True while capture saw more commands that make the printer answer in this stream
        (since capture's last END: one network job) than answers came (capture off: unknown,
        so True). Meaningful once capture parsed all it took (capture.pending() == 0) and saw
        the whole stream (capture.stream_known: network_mode checks it first)."""
        return self.capture is None or self.capture.stream_requests > self.replies

    def _taken(self, n):
        # per chunk, so no "as e" (Frames, above): what failed is reported by its class (no
        # exception object is kept; took() copies into the backlog, and what fails there is
        # the heap)
        if self.capture is not None:
            try:
                if self.capture.took(self.down.start, n):
                    # it only counts until it works again: so does the tap, without a call
                    self.down.taken = None
                    self._counting_from = self.down.bytes_out + n
            except MemoryError:
                self._capture_failed(MemoryError)
            except Exception:   # noqa: BLE001
                self._capture_failed(Exception)

    def take_held(self):
        """Hands capture the chunk held for a printer that failed (it never took it: capture
        stores it as not printed, after mark(PRINTER_FAILED))."""
        self._settle()
        if self.capture is not None and self.down.pending():
            try:
                self.capture.took(self.down.start, self.down.pending())
            except Exception as e:   # noqa: BLE001 -- capture must never stop the job's end
                self._capture_failed(e)

    def _pump(self, direction):
        try:
            return direction.pump()
        except MemoryError:    # no "as e" (Frames, above)
            return self._pump_starved(direction)

    def _pump_starved(self, direction):
        # Forwarding must have the heap: capture gives its own back (the receipt in progress
        # is lost, counted), then the same pump again. Its state is consistent: start/end
        # move only after a write.
        if self.capture is not None:
            self.capture.release()
            self._capture_failed(_FORWARDING_NEEDED_THE_HEAP)
        gc.collect()
        try:
            return direction.pump()
        except MemoryError:
            return False   # still none (the uplink holds it): the held chunk waits a turn

    def _capture_failed(self, e):
        self.attach(None)                 # what the tap counted for it stays counted
        self.capture_errors += 1
        self.last_error = e
