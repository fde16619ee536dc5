"""Capture: parse the bytes the POS sent, assemble receipts, keep their raw bytes, spool them.

Capture never sees the ports: the tap hands it its read buffer and the count of each
forwarded chunk, after the chunk went on to the printer (parsed in place, no copy). Everything
here is bounded per chunk: the parser's caps, a raw window of at most raw_max bytes (a receipt
bigger than that is stored without its raw bytes, flagged), and one spool write per finished
receipt.
"""
import gc

from .escpos_parser import Parser
from .receipt import Receipt, ReceiptAssembler


class Capture:
    """Chunks in, spooled receipt records out.

    encode(receipt, raw) -> the spool record, bytes or a list of bytes parts (Spool.append),
    (raw: a memoryview valid during the call only, None when the receipt was too big or memory
    ran short);
    spool.append(record) stores it durably; make_parser() -> a new Parser (printer options);
    new_receipt() -> what assembles a receipt: receipt.Receipt, or record.RecordBuilder
    (writes each line into the record as it comes).
    """

    def __init__(self, spool, encode, make_parser=Parser, raw_max=16384, new_receipt=Receipt):
        self._make_parser = make_parser
        self._new_receipt = new_receipt
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
        self.release()     # the old parser's heap is free before the new one is built
        self.parser = self._make_parser()
        self._assembler = ReceiptAssembler(self._new_receipt)
        self._raw_len = 0
        self._raw_start = 0      # stream offset of self._raw[0]
        self._raw_whole = True   # False once the receipt in progress outgrew the window
        return self

    def release(self):
        """Give the parser's and the receipt in progress's heap back (forwarding needs it);
        capture is off until reset()."""
        self.parser = None
        self._assembler = None

    def feed(self, chunk, n=None):
        """Parse one forwarded chunk (or chunk[:n]); spools every receipt it completed."""
        if n is None:
            n = len(chunk)
        events = self.parser.feed(chunk, n)
        if self._raw_max:
            self._keep_raw(chunk, n)
        self._finish(self._assembler.add(events))

    def _keep_raw(self, chunk, n):
        if self._raw_len + n > self._raw_max:
            # the receipt in progress is too big to keep whole: keep only this chunk, which
            # holds the start of the next receipt if one begins in it
            self._raw_whole = False
            self._raw_start += self._raw_len
            self._raw_len = 0
            if n > self._raw_max:
                self._raw_start += n
                return
        self._raw_mv[self._raw_len:self._raw_len + n] = memoryview(chunk)[:n]
        self._raw_len += n

    def idle(self):
        """No byte for the receipt idle gap: the receipt in progress (if any) is complete."""
        self._finish(self._assembler.add(self.parser.idle()))

    def close(self):
        """The stream ended (a network job's connection closed): the receipt in progress ends,
        and the next stream is parsed from the printer's power-on state, as `tilltap parse`
        reads one job's file."""
        self._finish(self._assembler.add(self.parser.close()))
        self._raw_len = 0
        self._raw_start = 0      # the parser counts offsets from 0 again
        self._raw_whole = True

    def _finish(self, receipts):
        for receipt in receipts:
            card = receipt.mask()      # before anything is stored
            if not self._raw_max:
                self._store(receipt, None)
                continue
            cut = receipt.offset - self._raw_start
            kept = 0 <= cut <= self._raw_len
            if not (kept and self._raw_whole):
                self.raw_omitted += 1
            # stored before the window moves on: the record is built from a view of it
            whole = kept and self._raw_whole and not card   # raw bytes would hold the number
            self._store(receipt, self._raw_mv[:cut] if whole else None)
            if kept:
                rest = self._raw_len - cut
                if rest:   # via a copy: the two ranges may overlap
                    self._raw_mv[:rest] = bytes(self._raw_mv[cut:self._raw_len])
                self._raw_len = rest
                self._raw_start = receipt.offset
            # else: the next receipt's first bytes are gone too, it stays not whole
            self._raw_whole = kept

    def _store(self, receipt, raw):
        self.receipts += 1
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
