"""The tap: forwards POS -> printer and printer -> POS byte for byte, and feeds capture.

Failure assumptions, written down first:
- The printer may stop taking bytes (paper out, CTS held, TCP window full) for any length of
  time; the POS may send anything in any chunking; either side may disconnect.
- Capture (parser, spool, uplink) may raise, run out of memory, or be slow; flash writes and
  network operations hold the CPU for tens of milliseconds up to the uplink's timeouts.
What the tap guarantees:
- Bytes are forwarded in order, unchanged, nothing added or dropped. When the printer cannot
  take more, the tap holds the chunk it has and stops reading from the POS: back-pressure goes
  to the POS (UART RTS, TCP window) instead of into an unbounded buffer. Replies from the
  printer go back to the POS the same way.
- A chunk goes on to the printer before capture sees it; capture works on that chunk only
  (bounded). An exception in capture switches capture off (counted) and forwarding carries on.
  Out of memory in forwarding itself, capture releases its heap first.
- Nothing here waits on the network: the uplink runs in its own thread (see main.py).
"""
import gc

_CHUNK = 512


def new_buffers(chunk=_CHUNK):
    """The two read buffers a Tap forwards through (one per direction)."""
    return bytearray(chunk), bytearray(chunk)


def _minus(a, b):
    return a - b


class Direction:
    """One direction of the pass-through, with the chunk it could not forward yet.

    buf: the read buffer (a bytearray), allocated once by the caller and reused for every job.
    """

    def __init__(self, src, dst, buf):
        self.src = src
        self.dst = dst
        self.buf = buf
        self.mv = memoryview(buf)
        self.start = 0
        self.end = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.closed = False

    def pending(self):
        return self.end - self.start

    def pump(self):
        """Forward what the destination takes; read a new chunk only when none is held.

        Returns the number of new bytes read (the chunk is self.mv[:n] until the next pump).
        """
        if self.start < self.end and not self._drain():
            return 0
        n = self.src.readinto(self.buf)
        if n is None:
            self.closed = True
            return 0
        if n:
            self.bytes_in += n
            self.start = 0
            self.end = n
            if self.dst is None:          # listen-only: nothing to forward to
                self.start = n
                self.bytes_out += n
            else:
                self._drain()
        return n

    def _drain(self):
        while self.start < self.end:
            w = self.dst.write(self.mv[self.start:self.end])
            if w is None:
                self.closed = True
                return False
            if not w:
                return False
            self.start += w
            self.bytes_out += w
        return True


class Tap:
    """The forwarding loop's state; step() is one iteration, never blocking.

    pos, printer: ports (see ports.py); printer is None in listen-only mode.
    capture: a Capture or None; clock: callable returning milliseconds, diff(a, b): a - b for
    that clock (time.ticks_ms / time.ticks_diff on the board, where ticks wrap).
    buffers: (POS -> printer, printer -> POS) read buffers from new_buffers(), kept by the
    caller so that a new job allocates nothing big on a heap capture may have exhausted.
    last_error: the exception that switched capture off (kept as is: formatting it in the
    handler could itself run out of memory).
    """

    def __init__(self, pos, printer, capture=None, clock=None, diff=None, split_idle_ms=3000,
                 buffers=None):
        down_buf, up_buf = buffers or new_buffers()
        self.down = Direction(pos, printer, down_buf)
        self.up = Direction(printer, pos, up_buf) if printer is not None else None
        self.capture = capture
        self._clock = clock
        self._diff = diff or _minus
        self._split_idle_ms = split_idle_ms
        self._last_byte = clock() if clock else 0
        self._split_due = False
        self.capture_errors = 0
        self.last_error = None

    def step(self):
        """Forward both ways, feed capture, end a receipt after the idle gap.

        Returns True when bytes moved (the caller should call again at once).
        """
        n = self._pump(self.down)
        if n and self.capture is not None:
            try:
                # the read buffer itself: the parser works on it in place, no copy
                self.capture.feed(self.down.buf, n)
            except Exception as e:   # noqa: BLE001 -- capture must never stop printing
                self._capture_failed(e)
        moved = n > 0
        if self.up is not None and self._pump(self.up):
            moved = True
        now = self._clock()
        if n:
            self._last_byte = now
            self._split_due = True
        idle = self._diff(now, self._last_byte)
        if self._split_due and idle >= self._split_idle_ms:
            self._split_due = False
            if self.capture is not None:
                try:
                    self.capture.idle()
                except Exception as e:   # noqa: BLE001
                    self._capture_failed(e)
        return moved

    def closed(self):
        """True when either side closed (network mode: the job's connection ended)."""
        return self.down.closed or (self.up is not None and self.up.closed)

    def _pump(self, direction):
        try:
            return direction.pump()
        except MemoryError as e:
            # Forwarding must have the heap: capture gives its own back (the receipt in
            # progress is lost, counted), then the same pump again. Its state is consistent:
            # start/end move only after a write, and a slice is allocated before each write.
            if self.capture is not None:
                self.capture.release()
                self._capture_failed(e)
            gc.collect()
            try:
                return direction.pump()
            except MemoryError:
                return 0    # still none (the uplink holds it): the held chunk waits a turn

    def _capture_failed(self, e):
        self.capture = None
        self.capture_errors += 1
        self.last_error = e
