"""A receipt's record on the board: written as it prints, and what of it leaves the board.

RecordBuilder writes each line into the record's JSON as it prints (upload modes full and
text). Records is the upload policy: per upload mode, which receipt object capture assembles,
which raw bytes it keeps and what the record holds (protocol.py defines the record itself).
"""
import gc
import json
import time

from .cardmask import mask_bytes, mask_cards, mask_codes
from .compat import const, ticks_diff, ticks_ms
from .protocol import (
    EPOCH_2000_OFFSET_S,
    add_item,
    b64,
    image_entry,
    record_from_fields,
    record_head,
    record_parts,
    want_raw,
)
from .receipt import COMPLETE, INCOMPLETE, Receipt

_SPILL_PARTS = const(8)   # parts of lines (~256 bytes each) a receipt keeps on the heap
_LINES = b'"lines":['      # the record's lines array, opened
_RAW_LINES = b',"raw_lines":['


class RecordBuilder:
    """A receipt written into its record while it prints (the board's capture in upload
    modes full and text), in place of a receipt.Receipt: the same calls from the
    ReceiptAssembler, the same record as record_from_receipt().

    Each line goes straight into JSON parts of about _PART bytes, its card numbers masked, so
    a long receipt holds a few blocks of text instead of an object per line and per span; a
    heap fragmented by those has no room left for anything larger. Past _SPILL_PARTS parts the
    finished ones go to flash (new_scratch() -> spool.Scratch, made on first use; one for the
    lines, one for the undecoded lines' spans): the heap a receipt takes no longer grows with
    its length. Blank lines before the first text are dropped and blank lines at the end are
    never written (as Receipt.trim).
    """

    status = COMPLETE         # as receipt.Receipt
    reason = None

    def __init__(self, new_scratch=None):
        self._new_scratch = new_scratch
        self._scratch = None
        self._raw_scratch = None
        self._lines = [bytearray(_LINES)]
        self._raw_lines = [bytearray(_RAW_LINES)]
        self._count = 0          # lines written
        self._raw_count = 0
        self._blanks = 0         # blank lines held back: written only if text follows
        self.barcodes = []
        self.codes2d = []
        self.images = []
        self.cut = None
        self.end = None
        self.offset = None
        self.drawer = False
        self.card = False        # a card number was masked: the raw bytes must stay here

    def add_line(self, text, raw):
        """One printed line: text, or None and the undecoded spans."""
        if text == "":
            if self._count:
                self._blanks += 1
            return
        while self._blanks:
            self._blanks -= 1
            self._add(self._lines, self._count, b'""')
            self._count += 1
        if text is None:
            spans = []
            for enc, intl, data in raw:
                masked = mask_bytes(data)
                self.card = self.card or masked is not data
                spans.append([enc, intl, b64(masked)])
            self._add(self._raw_lines, self._raw_count,
                      json.dumps([self._count, spans]).encode())
            self._raw_count += 1
            self._add(self._lines, self._count, b"null")
        else:
            masked = mask_cards(text)
            self.card = self.card or masked is not text
            self._add(self._lines, self._count, json.dumps(masked).encode())
        self._count += 1
        if self._new_scratch is not None:
            if len(self._lines) > _SPILL_PARTS:
                self._spill(False)
            if self._raw_lines is not None and len(self._raw_lines) > _SPILL_PARTS:
                self._spill(True)

    def _add(self, parts, index, item):
        """add_item() to the lines or the undecoded lines. In a heap too fragmented for one
        more part, the lines so far go to flash (their heap comes back) and the item is added
        once more; capture fails only if that fails too."""
        try:
            add_item(parts, index, item)
        except MemoryError:
            if self._new_scratch is None:
                raise
            lines = parts is self._lines
            gc.collect()
            self._spill(False, 0)
            if self._raw_count and self._new_scratch is not None:
                self._spill(True, 0)
            if lines:      # a flash error in _spill starts the lines afresh
                parts, index = self._lines, self._count
            else:
                parts, index = self._raw_lines, self._raw_count
            add_item(parts, index, item)

    def _spill(self, raw, keep=1):
        """Writes the parts of lines (raw: of undecoded lines) but the last `keep` to their
        scratch file."""
        parts = self._raw_lines if raw else self._lines
        scratch = self._raw_scratch if raw else self._scratch
        if scratch is None:
            scratch = self._new_scratch()
            if raw:
                self._raw_scratch = scratch
            else:
                self._scratch = scratch
        for k in range(len(parts) - keep):
            if not scratch.write(parts[k]):
                # the flash refused: what went to this file is lost (the receipt says so);
                # the rest of the receipt stays on the heap
                self._lost(raw)
                return
        parts = parts[-1:] if keep else [bytearray()]
        if raw:
            self._raw_lines = parts
        else:
            self._lines = parts

    def _lost(self, raw):
        self._new_scratch = None
        self.status = INCOMPLETE
        self.reason = "flash_error"
        if raw:
            self._raw_scratch.remove()
            self._raw_scratch = None
            self._raw_lines = [bytearray(_RAW_LINES)]
            self._raw_count = 0
        else:
            self._scratch.remove()
            self._scratch = None
            self._lines = [bytearray(_LINES)]
            self._count = 0

    def close(self):
        """The receipt is stored (or given up): its flash scratch file goes."""
        for scratch in (self._scratch, self._raw_scratch):
            if scratch is not None:
                scratch.remove()

    def finish(self):
        """The receipt ended: its lines are written already."""

    def mask(self):
        """Masks card numbers in its codes (its lines were masked as they came); True if the
        receipt showed one anywhere (its raw bytes must not leave the board then)."""
        self.card = mask_codes(self) or self.card
        return self.card

    def record_parts(self, device, boot, captured_at, time_synced, raw=None, images=False,
                     printer=None):
        """record_parts(record_from_receipt(...), raw) of this receipt; may be called again
        (without raw, after a MemoryError)."""
        if self._raw_lines is not None:      # the arrays are closed once, on the first call
            self._lines[-1] += b"]"
            if self._raw_count:
                self._raw_lines[-1] += b"]"
                if self._raw_scratch is not None:
                    self._lines.append(self._raw_scratch)
                self._lines += self._raw_lines
            self._raw_lines = None
        members = list(self._lines)
        if self._scratch is not None:
            members.insert(0, self._scratch)
        rec = record_head(self, device, boot, captured_at, time_synced, printer)
        rec["barcodes"] = [[s, d] for s, d in self.barcodes]
        rec["codes2d"] = [[t, d] for t, d in self.codes2d]
        rec["images"] = [image_entry(i, images) for i in self.images]
        return record_parts(rec, raw, members)


class Records:
    """The upload policy: records of one board's receipts, per its upload settings.

    upload: the configuration's upload section; printer: the printer context every record
    carries; synced(): True once the wall clock is set (NTP), else capture times are ms of
    uptime since ticks started; new_scratch() -> a spool.Scratch for a long receipt's lines
    (Spool.scratch; None: they stay on the heap).
    """

    def __init__(self, device, boot, upload, printer, synced, started, new_scratch=None):
        self._new_scratch = new_scratch
        self._device = device
        self._boot = boot
        self._upload = upload
        self._printer = printer
        self._synced = synced
        self._started = started
        self._extract = None
        if upload["mode"] == "fields":
            # the extractor and its byte tables: only this mode pays for them
            from .fields_mode import receipt_fields
            self._extract = receipt_fields

    def new_receipt(self):
        """What capture assembles a receipt into: the whole receipt where the board's
        extractor reads it (mode fields), else its record written line by line."""
        return Receipt() if self._extract else RecordBuilder(self._new_scratch)

    def encode(self, receipt, raw):
        """The spool record (a list of parts) of a finished receipt; raw: its ESC/POS bytes,
        valid during the call, or None."""
        upload = self._upload
        synced = self._synced()
        captured = wall_ms() if synced else ticks_diff(ticks_ms(), self._started)
        if self._extract is not None:     # upload mode "fields": only the consumption data
            return record_parts(record_from_fields(
                receipt, self._extract(receipt), self._device, self._boot, captured, synced,
                self._printer))
        if upload["mode"] == "text" or raw is None or not want_raw(
                receipt, len(raw), upload["raw_bytes_max"], upload["images"]):
            raw = None
        return receipt.record_parts(self._device, self._boot, captured, synced, raw,
                                    upload["images"], self._printer)


def raw_max(upload):
    """Raw bytes capture keeps per receipt, by the upload settings: they leave the board in
    mode full only."""
    return upload["raw_bytes_max"] if upload["mode"] == "full" else 0


def wall_ms():
    """Milliseconds since 1970 (MicroPython on the ESP32 counts time.time() from 2000)."""
    t = time.time()
    if t < EPOCH_2000_OFFSET_S:
        t += EPOCH_2000_OFFSET_S
    return int(t * 1000)
