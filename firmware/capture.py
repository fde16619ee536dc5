"""Capture: parse the bytes the POS sent, assemble receipts, keep their raw bytes, spool them.

Capture never sees the ports: the tap hands it a copy of each forwarded chunk, after the
chunk went on to the printer. Everything here is bounded per chunk: the parser's caps, a raw
window of at most raw_max bytes (a receipt bigger than that is stored without its raw bytes,
flagged), and one spool write per finished receipt.
"""
from escpos_parser import Parser
from receipt import ReceiptAssembler


class Capture:
    """Chunks in, spooled receipt records out.

    encode(receipt, raw) -> bytes builds the spool record (raw is None when it was too big);
    spool.append(record) stores it durably; make_parser() -> a new Parser (printer options).
    """

    def __init__(self, spool, encode, make_parser=Parser, raw_max=16384):
        self._make_parser = make_parser
        self._spool = spool
        self._encode = encode
        self._raw_max = raw_max
        self._raw = bytearray(raw_max)
        self._raw_mv = memoryview(self._raw)
        self.reset()
        self.receipts = 0
        self.raw_omitted = 0
        self.store_errors = 0
        self.last_store_error = None
        self.last_seq = None

    def reset(self):
        """Start afresh after a failure: a new parser, the receipt in progress is dropped."""
        self.parser = self._make_parser()
        self._assembler = ReceiptAssembler()
        self._raw_len = 0
        self._raw_start = 0      # stream offset of self._raw[0]
        self._raw_whole = True   # False once the receipt in progress outgrew the window
        return self

    def feed(self, chunk):
        """Parse one forwarded chunk; spools every receipt it completed."""
        events = self.parser.feed(chunk)
        if self._raw_max:
            self._keep_raw(chunk)
        self._finish(self._assembler.add(events))

    def _keep_raw(self, chunk):
        n = len(chunk)
        if self._raw_len + n > self._raw_max:
            # the receipt in progress is too big to keep whole: keep only this chunk, which
            # holds the start of the next receipt if one begins in it
            self._raw_whole = False
            self._raw_start += self._raw_len
            self._raw_len = 0
            if n > self._raw_max:
                self._raw_start += n
                return
        self._raw_mv[self._raw_len:self._raw_len + n] = chunk
        self._raw_len += n

    def idle(self):
        """No byte for the receipt idle gap: the receipt in progress (if any) is complete."""
        self._finish(self._assembler.add(self.parser.idle()))

    def _finish(self, receipts):
        for receipt in receipts:
            raw = None
            if self._raw_max:
                cut = receipt.offset - self._raw_start
                kept = 0 <= cut <= self._raw_len
                if kept and self._raw_whole:
                    raw = bytes(self._raw_mv[:cut])
                else:
                    self.raw_omitted += 1
                if kept:
                    rest = self._raw_len - cut
                    if rest:   # via a copy: the two ranges may overlap
                        self._raw_mv[:rest] = bytes(self._raw_mv[cut:self._raw_len])
                    self._raw_len = rest
                    self._raw_start = receipt.offset
                # else: the next receipt's first bytes are gone too, it stays not whole
                self._raw_whole = kept
            self._store(receipt, raw)

    def _store(self, receipt, raw):
        self.receipts += 1
        try:
            self.last_seq = self._spool.append(self._encode(receipt, raw))
        except Exception as e:   # noqa: BLE001 -- a failing flash must never stop printing
            self.store_errors += 1
            self.last_store_error = repr(e)
