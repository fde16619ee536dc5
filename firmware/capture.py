"""Capture: the bytes the printer took, parsed into receipts, spooled with their raw bytes.

Failure assumptions, written down first:
- Capture can be slower than the line: an ESP32 parses a command-dense stream at tens of KB/s,
  while a TCP job arrives at LAN speed and a flash write stops everything for tens of ms.
  Forwarding must never wait for it.
- The heap is small and fragments: everything capture needs per byte is allocated once.
- The parser, the spool or the heap can fail at any moment; so can the printer, mid-job.
What capture does about it:
- The tap hands over every byte the printer took (took(), from its read buffer; take() for
  any buffer), copied into one buffer (the
  backlog) allocated at boot; the tap gives capture a time budget per loop turn (work()), and
  capture parses from the backlog in slices of _SLICE bytes until the budget is spent. Nothing
  here reads a port.
- The same buffer keeps the raw bytes of the receipt in progress (for the record, upload mode
  full): its bytes stay until the receipt ends, up to the buffer's size; a receipt that
  outgrows it is stored without raw bytes (counted).
- Job ends, idle gaps and printer failures are marks in the backlog at their stream position
  (mark()), so each receipt ends in order even when capture runs behind.
- When the backlog is full (capture fell behind by more than its size) the bytes that do not
  fit are not kept: capture parses what it has, ends the receipt in progress as incomplete
  ("capture_behind"), counts the bytes it skipped, and starts again at the next job end, idle
  gap or ESC @ (a receipt's usual first command). Receipts are never silently merged. Until
  it next works it does not pick up at all: took() says so, and the tap counts the bytes for
  it without a call per chunk (tap.py).

Every receipt is stored with a status: "complete"; "not_printed" (the printer failed before it
took all of the receipt's bytes); or "incomplete" with a reason: "cut_in_payload" (the job
ended inside a command, an image say), "capture_behind".
"""
import gc

from .compat import const, ticks_add, ticks_diff, ticks_us
from .escpos_parser import REQUEST, Parser, reply_bytes
from .receipt import INCOMPLETE, NOT_PRINTED, Receipt, ReceiptAssembler

# Marks: what happened at a position of the stream.
END = const(0)              # the stream ended (a network job's connection, a serial idle gap)
IDLE = const(1)             # no byte for the idle gap: the receipt in progress ends
PRINTER_FAILED = const(2)   # the printer took nothing after this point
_GAP = const(3)             # bytes were not kept (backlog full) from here
_RESYNC = const(4)          # keeping again (after a gap), from an ESC @

_SLICE = const(128)         # bytes parsed per call: bounds one step's work on the chip
_MAX_MARKS = const(8)
_INIT = b"\x1b@"            # ESC @: where capture picks up again after a gap
# A backlog this large holds a burst at LAN speed (the demo workload into a printer behind
# socket buffers loses no receipt under forwarding_first; README, The tap's capture policy).
_BURST = const(262144)


def keeps_pace(policy, backlog):
    """capture.policy resolved for a backlog (the buffer or its size): True for keep_pace,
    False for forwarding_first; auto is forwarding_first only where the backlog holds a burst
    (a board with PSRAM, a PC), since a smaller one loses the tails of larger jobs."""
    if policy == "auto":
        return (backlog if isinstance(backlog, int) else len(backlog)) < _BURST
    return policy == "keep_pace"


class Capture:
    """Bytes the printer took in, spooled receipt records out.

    encode(receipt, raw) -> the spool record, bytes or a list of bytes parts (Spool.append),
    (raw: a memoryview valid during the call only, None when the receipt's raw bytes were not
    kept, or memory ran short);
    spool.append(record) stores it durably; make_parser() -> a new Parser (printer options);
    new_receipt() -> what assembles a receipt: receipt.Receipt, or record.RecordBuilder
    (writes each line into the record as it comes); backlog: the buffer (a bytearray the
    caller allocated at boot) or its size in bytes; raw: keep each receipt's raw bytes (up to
    the buffer's size); keep_pace: capture.policy keep_pace (True: pressed() once half the
    backlog waits) or forwarding_first (False: never pressed, the backlog may fill; tap.py).
    """

    def __init__(self, spool, encode, make_parser=Parser, backlog=4096, raw=True, slowdown=1,
                 new_receipt=Receipt, keep_pace=True):
        self._make_parser = make_parser
        self._slowdown = slowdown   # benches: the parser made this many times slower (a chip)
        self._new_receipt = new_receipt
        self._spool = spool
        self._encode = encode
        self._keep_raw = raw
        self.keep_pace = keep_pace
        self._buf = backlog if isinstance(backlog, bytearray) else bytearray(backlog)
        self._mv = memoryview(self._buf)
        self._size = len(self._buf)
        self._marks = []            # [[position, kind]], in order
        self._base = 0              # stream position of self._buf[0]; positions never wrap
        self._write = 0             # position after the last byte taken
        self._parsed = 0            # position after the last byte parsed
        self._skipping = False      # after a gap: keeping nothing until an ESC @ or a mark
        self._source = self._source_mv = None   # took()'s buffer and a view of it
        self._full_at = -1          # _parsed when the backlog was found full (till work())
        self.receipts = 0
        self.raw_omitted = 0
        self.store_errors = 0
        self.last_store_error = None
        self.last_seq = None
        self.behind = 0             # times the backlog was full
        self.skipped_bytes = 0      # bytes the printer took that capture never saw
        self.incomplete = 0
        self.not_printed = 0
        self.requests = 0           # commands seen that make the printer answer
        self.stream_requests = 0    # ... since the stream (a network job) began
        self.stream_reply_bytes = 0  # the bytes their answers have, when all are of known size
        self.stream_unsized = 0     # ... requests whose answer's size is not known
        self.stream_known = True    # False: bytes of this stream went unparsed (a restart, a
                                    # gap), so its request counts are not the whole story
        self.reset()

    # ---- lifecycle ----------------------------------------------------------------------------

    def reset(self, resync=False):
        """Start afresh (at boot, or resync=True after a failure): a new parser; the receipt
        in progress and the backlog are dropped (counted as skipped bytes). After a failure
        the stream is mid-receipt: capture picks up again at the next ESC @ or job end."""
        self.release()     # the old parser's heap is free before the new one is built
        self.skipped_bytes += self._write - self._parsed
        self._marks = []
        self._base = self._parsed = self._write
        self._skipping = resync
        self._full_at = -1
        self.parser = self._make_parser()
        self._assembler = ReceiptAssembler(self._new_receipt)
        self._stream = self._write       # position of the parser's offset 0
        self._receipt_start = self._write
        self._raw_whole = self._keep_raw
        self._printed_to = None          # stream offset the printer took up to, when it failed
        self._behind_now = False         # the receipt in progress lost bytes to a gap
        self.stream_known = not resync
        return self

    def release(self):
        """Give the parser's and the receipt in progress's heap back (forwarding needs it);
        capture is off until reset(). The backlog buffer stays: it was allocated at boot."""
        self.parser = None
        self._assembler = None

    # ---- what the tap calls -----------------------------------------------------------------

    def take(self, data, start=0, n=None):
        """Bytes the printer took (listen-only: bytes the POS sent): data[start:start + n]."""
        if data is not self._source:
            self.read_from(data)
        self.took(start, len(data) - start if n is None else n)

    def read_from(self, buf):
        """Name the buffer took() copies from: the tap's read buffer, the same for every job."""
        self._source = buf
        self._source_mv = memoryview(buf)

    def took(self, start, n):
        """The printer took n bytes from start of the buffer read_from() named; runs per chunk,
        with a frame kept off the heap (tap.py, Frames). Returns True when capture only counts
        bytes from now on (skipping with a full backlog) until it next works: the tap then
        counts them itself (Tap._settle) and calls nothing per chunk."""
        if self.parser is None:            # released: capture restarts later, resyncing
            self.skipped_bytes += n
            return False
        if self._skipping:
            # the backlog was full when the gap began or a resume last failed, and capture has
            # not worked since: it picks up only after it has (a receipt that starts
            # meanwhile is skipped whole, counted, even where it would fit what room is
            # left), so a burst that outruns it costs no search (MicroPython's find compares
            # at every offset) and, in the tap, no call per chunk
            if self._parsed == self._full_at:
                self.skipped_bytes += n
                return True
            k = self._source.find(_INIT, start, start + n) - start if n else -1
            if k < 0:
                self.skipped_bytes += n
                return False
            if not self._resume(n - k):      # no room to pick up at it: counting from here
                self.skipped_bytes += n
                return True
            self.skipped_bytes += k
            start += k
            n -= k
        elif self._write - self._base + n > self._size and not self._room(n):
            self.behind += 1
            self.skipped_bytes += n
            self._mark(_GAP)
            self._skipping = True
            self._full_at = self._parsed
            return True
        self._keep(start, n)
        return False

    def _resume(self, n):
        # after a gap, at an ESC @: kept from here if n bytes fit and a mark can be set
        if self._room(n) and self._mark(_RESYNC):
            self._skipping = False
            return True
        self._full_at = self._parsed
        return False

    def _keep(self, start, n):
        at = self._write - self._base
        self._mv[at:at + n] = self._source_mv[start:start + n]
        self._write += n

    def mark(self, kind):
        """Something happened after the bytes taken so far: END, IDLE or PRINTER_FAILED."""
        if kind != PRINTER_FAILED and self._skipping:
            self._skipping = False         # the next stream is kept from its first byte
        self._mark(kind)

    def work(self, budget_us=None, min_bytes=0, stop=None):
        """Parse from the backlog until it is empty or budget_us microseconds passed (None:
        until it is empty) and at least min_bytes were parsed, or stop() says so after a
        slice (forwarding has bytes to move). Spools every receipt that ends.
        Returns has_work(): False once capture was released (nothing parses until reset)."""
        started = ticks_us()
        until = self._parsed + min_bytes
        self._full_at = -1     # parsing or marks may free room: took() looks for ESC @ again
        while self.parser is not None:
            if self._marks and self._marks[0][0] == self._parsed:
                self._at_mark(self._marks.pop(0)[1])
                continue
            end = self._marks[0][0] if self._marks else self._write
            n = end - self._parsed
            if n <= 0:
                return False
            n = min(n, _SLICE)
            at = self._parsed - self._base
            fed = ticks_us()
            events = self.parser.feed(self._buf, n, at)
            if self._slowdown > 1:
                _spin(ticks_diff(ticks_us(), fed) * (self._slowdown - 1))
            self._parsed += n
            self._done(events)
            if self._parsed >= until and (
                    (budget_us is not None and ticks_diff(ticks_us(), started) >= budget_us)
                    or (stop is not None and stop())):
                break
        return self.has_work()

    def has_work(self):
        """True while bytes or marks wait to be parsed."""
        return self.parser is not None and (self._parsed < self._write or bool(self._marks))

    def pending(self):
        """Bytes taken and not parsed yet."""
        return self._write - self._parsed

    def may_ask(self):
        """False when the bytes not parsed yet cannot hold a command the printer answers, so
        the stream_* request counts are already final for this stream (no mark waits either);
        True when only parsing them tells (capture off: unknown)."""
        if self.parser is None or self._marks:
            return True
        return self.parser.may_ask(self._buf, self._parsed - self._base, self._write - self._base)

    def pressed(self):
        """True once half the backlog waits to be parsed: capture must parse now, even while
        bytes are moving, or fall behind. Never under forwarding_first (keep_pace False)."""
        return self.keep_pace and self._write - self._parsed > self._size // 2

    def feed(self, data, n=None):
        """take() then work() to the end: the whole chunk parsed now (tests, tools)."""
        self.take(data, 0, n)
        self.work()

    def close(self):
        """The stream ended now: mark(END), then parse to the end."""
        self.mark(END)
        self.work()

    # ---- the backlog --------------------------------------------------------------------------

    def _free(self):
        """Position before which the buffer holds nothing needed: parsed, and not part of a
        receipt whose raw bytes are kept."""
        if self._raw_whole and self._receipt_start < self._parsed:
            return self._receipt_start
        return self._parsed

    def _room(self, n):
        """True once n more bytes fit, moving what is kept to the buffer's front if needed;
        the receipt in progress gives up its raw bytes rather than capture fall behind."""
        if self._write - self._base + n <= self._size:
            return True
        for attempt in (0, 1):
            free = self._free()
            live = self._write - free
            if live + n <= self._size:
                # to the front: dest before source, so a forward copy is safe
                self._mv[:live] = self._mv[free - self._base:self._write - self._base]
                self._base = free
                return True
            if attempt == 0 and self._raw_whole and self._receipt_start < self._parsed:
                self._raw_whole = False          # too big to keep whole: stored without raw
            else:
                return False
        return False

    def _mark(self, kind):
        if len(self._marks) >= _MAX_MARKS:
            self.behind += 1
            return False
        self._marks.append([self._write, kind])
        return True

    def _at_mark(self, kind):
        if kind == PRINTER_FAILED:
            self._printed_to = self._parsed - self._stream
        elif kind == IDLE:
            self._done(self.parser.idle())
        elif kind == END or kind == _GAP:
            self._behind_now = kind == _GAP
            self._done(self.parser.close())
            self._behind_now = False
            self._new_stream()
            self.stream_known = kind == END    # after a gap: unknown until the stream ends
        else:                                  # _RESYNC: a new stream from its ESC @
            self._new_stream()

    def _new_stream(self):
        self.stream_requests = self.stream_reply_bytes = self.stream_unsized = 0
        self._stream = self._receipt_start = self._parsed
        self._raw_whole = self._keep_raw
        self._printed_to = None

    # ---- receipts -----------------------------------------------------------------------------

    def _done(self, events):
        for event in events:
            if event[0] == REQUEST:
                self.requests += 1
                self.stream_requests += 1
                size = reply_bytes(event[1])
                self.stream_reply_bytes += size
                if not size:
                    self.stream_unsized += 1
        for receipt in self._assembler.add(events):
            self._status(receipt)
            card = receipt.mask()      # before anything is stored
            end = self._stream + receipt.offset
            kept = self._raw_whole and self._receipt_start >= self._base and end <= self._write
            if self._keep_raw and not kept:
                self.raw_omitted += 1
            raw = None
            if kept and not card:      # raw bytes would show the card number
                raw = self._mv[self._receipt_start - self._base:end - self._base]
            self._store(receipt, raw)    # before the buffer moves on: raw is a view of it
            self._receipt_start = end
            self._raw_whole = self._keep_raw

    def _status(self, receipt):
        if self._printed_to is not None and (receipt.offset > self._printed_to or
                                             receipt.end != "cut"):
            # the printer failed before it took all of it, or in it: its end never printed
            receipt.status = NOT_PRINTED
            self.not_printed += 1
        elif receipt.end == "truncated" or self._behind_now:
            receipt.status = INCOMPLETE
            receipt.reason = "capture_behind" if self._behind_now else "cut_in_payload"
            self.incomplete += 1

    def _store(self, receipt, raw):
        self.receipts += 1
        try:
            self._append(receipt, raw)
        finally:
            receipt.close()

    def _append(self, receipt, raw):
        error = None
        for attempt in (0, 1):
            try:
                self.last_seq = self._spool.append(self._encode(receipt, raw))
                return
            except MemoryError as e:
                # mostly a fragmented heap: collect once and try again, then without raw bytes
                gc.collect()
                raw = None
                error = e
            except Exception as e:   # noqa: BLE001 -- a failing flash must never stop printing
                error = e
                break
        self.store_errors += 1
        self.last_store_error = repr(error)


def _spin(us):
    """Busy for us microseconds: the CPU a slower chip would have spent parsing."""
    end = ticks_add(ticks_us(), us)
    while ticks_diff(end, ticks_us()) > 0:
        pass
