"""Receipts assembled from parser events: what one printed receipt contained."""
from .cardmask import mask_receipt
from .escpos_parser import BARCODE, CODE2D, DRAWER, IMAGE, LINE, RECEIPT_END, Parser

# A receipt's status (capture.py decides it): complete; not_printed (the printer failed before
# it took all of the receipt's bytes); incomplete, with a reason (cut_in_payload,
# capture_behind). Reports count complete receipts only.
COMPLETE = "complete"
NOT_PRINTED = "not_printed"
INCOMPLETE = "incomplete"
STATUSES = (COMPLETE, NOT_PRINTED, INCOMPLETE)


class Receipt:
    """One receipt: text lines, codes, images, how it ended, its status.

    lines: str per printed line, or None where the board could not decode it; then
    raw_lines[i] holds ((encoding, intl_set, bytes), ...) for the server to decode.
    """

    status = COMPLETE         # class defaults: set on the instance only when it differs
    reason = None

    def __init__(self):
        self.lines = []
        self.raw_lines = {}
        self.barcodes = []
        self.codes2d = []
        self.images = []
        self.cut = None
        self.end = None
        self.offset = None   # stream position just after this receipt's last byte
        self.drawer = False

    def add_line(self, text, raw):
        """One printed line: text, or None and the undecoded spans."""
        if text is None:
            self.raw_lines[len(self.lines)] = raw
        self.lines.append(text)

    def finish(self):
        """The receipt ended: blank lines around it are dropped."""
        self.trim()

    def mask(self):
        """Masks card numbers in place; True if it showed one (its raw bytes must not leave
        the board then)."""
        return mask_receipt(self)

    def close(self):
        """The receipt is stored (or given up); it holds nothing outside the heap."""

    def trim(self):
        """Drop leading and trailing blank lines (paper feeds, not content)."""
        lines = self.lines
        start = 0
        while start < len(lines) and lines[start] == "":
            start += 1
        end = len(lines)
        while end > start and lines[end - 1] == "":
            end -= 1
        if start or end < len(lines):
            self.raw_lines = {k - start: v for k, v in self.raw_lines.items()
                              if start <= k < end}
            self.lines = lines[start:end]

    def to_dict(self):
        """Plain-data view (the `tilltap parse` JSON shape): the record's shapes, codes as
        [kind, data] pairs, images as {kind, width, height, size}."""
        return {
            "lines": self.lines,
            "barcodes": [[s, d] for s, d in self.barcodes],
            "codes2d": [[t, d] for t, d in self.codes2d],
            "images": [{"kind": i[0], "width": i[1], "height": i[2], "size": i[3]}
                       for i in self.images],
            "cut": self.cut,
            "end": self.end,
            "drawer": self.drawer,
        }


class ReceiptAssembler:
    """Feeds on parser events; returns each receipt when its end event arrives, finished.

    new_receipt: Receipt, or record.RecordBuilder on the board (the same calls).
    """

    def __init__(self, new_receipt=Receipt):
        self._new = new_receipt
        self._receipt = new_receipt()

    def add(self, events):
        """Consume events; returns the list of receipts they completed."""
        done = []
        r = self._receipt
        for ev in events:
            kind = ev[0]
            if kind == LINE:
                r.add_line(ev[1], ev[2])
            elif kind == BARCODE:
                r.barcodes.append((ev[1], ev[2]))
            elif kind == CODE2D:
                r.codes2d.append((ev[1], ev[2]))
            elif kind == IMAGE:
                # (kind, width, height, size[, payload]): a payload only where the parser
                # keeps images (server-side OCR), never on the board
                r.images.append(ev[1:])
            elif kind == DRAWER:
                r.drawer = True
            elif kind == RECEIPT_END:
                r.end = ev[1]
                r.cut = ev[2]
                r.offset = ev[3]
                r.finish()
                done.append(r)
                r = self._receipt = self._new()
        return done

    def pending(self):
        """The receipt in progress (not yet ended), for inspection."""
        return self._receipt


def parse_stream(data, chunk_size=0, **options):
    """One whole stream (a file, a job) parsed: (receipts as to_dict() dicts, parser stats).
    chunk_size: feed the parser that many bytes at a time (0: all at once); the result is the
    same for any size. options: Parser options (the printer's settings)."""
    parser = Parser(**options)
    assembler = ReceiptAssembler()
    receipts = []
    step = chunk_size if chunk_size > 0 else max(len(data), 1)
    for pos in range(0, len(data), step):
        receipts += assembler.add(parser.feed(data[pos:pos + step]))
    receipts += assembler.add(parser.close())
    return [r.to_dict() for r in receipts], parser.stats()
