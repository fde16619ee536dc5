"""The text of a stored receipt: every line readable, decoded on the server with full codecs.

The board sends a line it cannot decode (MicroPython has no GB18030, Big5, Shift_JIS, CP949 or
single-byte code-page codecs) as null with its spans in `raw_lines`. Here, at ingest, each such
line is decoded with the same function the parser uses on CPython (escpos_parser.decode_line),
so the server's text is what `tilltap parse` prints for the same stream. Then:

- bytes no codec accepts (a broken multibyte sequence) read as \\xNN and the line is counted
  (undecodable);
- NUL and lone surrogates (which no database text type stores, and which a hostile device may
  send in any line) become U+FFFD, counted (replaced); the same characters in the record's
  codes and board-extracted fields are counted here too, and cleaned (clean()) wherever those
  are read: extraction, the receipt's detail;
- card numbers are masked again: a number the board saw only as bytes is whole text now.

The record as received is stored unchanged (receipts.record); this text lives beside it in
receipt_text and is what extraction, search, reports and the dashboard read.
"""
from __future__ import annotations

from tilltap_fw import escpos_parser, protocol_check
from tilltap_fw.cardmask import mask_cards

_REPLACEMENT = "\ufffd"


class ReceiptText:
    """lines: a str per printed line; undecodable: lines holding bytes no codec took;
    replaced: characters replaced by U+FFFD (NUL, lone surrogates)."""

    __slots__ = ("lines", "replaced", "undecodable")

    def __init__(self, lines, undecodable=0, replaced=0):
        self.lines = lines
        self.undecodable = undecodable
        self.replaced = replaced

    def row(self, device_id, seq):
        """The receipt_text row."""
        return {"device_id": device_id, "seq": seq, "lines": self.lines,
                "undecodable": self.undecodable, "replaced": self.replaced}


def record_text(record: dict) -> ReceiptText:
    """The decoded, masked text of a validated record (protocol_check.validate_record)."""
    spans_of: dict[int, tuple | None] = {}
    for index, spans in record.get("raw_lines") or ():
        try:
            spans_of[index] = tuple((enc, intl, protocol_check.unb64(data))
                                    for enc, intl, data in spans)
        except protocol_check.ProtocolError:
            spans_of[index] = None
    lines, undecodable = [], 0
    codes = "".join(kind + data for kind, data in (record.get("barcodes") or []) +
                    (record.get("codes2d") or []))
    replaced = clean(codes)[1] + _unclean(record.get("fields"))
    for index, line in enumerate(record.get("lines") or ()):
        if line is None:
            line, broken = _decode(spans_of.get(index))
            undecodable += broken
        line, n = clean(line)
        replaced += n
        lines.append(mask_cards(line))
    return ReceiptText(lines, undecodable, replaced)


def _decode(spans):
    """(text, 1 if some bytes took no codec else 0) of an undecoded line's spans."""
    if not spans:
        return "", 1          # null with no (or bad) spans: nothing to read
    try:
        return escpos_parser.decode_line(spans, "strict"), 0
    except (UnicodeError, LookupError):
        return escpos_parser.decode_line(spans), 1


def clean(text):
    """(text, characters replaced): NUL and lone surrogates as U+FFFD, so that the text can be
    stored in any database text column and encoded as UTF-8 (JSON answers)."""
    if text.isprintable() or not any(c == "\0" or "\ud800" <= c <= "\udfff" for c in text):
        return text, 0
    out = [(_REPLACEMENT if c == "\0" or "\ud800" <= c <= "\udfff" else c) for c in text]
    return "".join(out), sum(1 for a, b in zip(out, text) if a is not b)


def clean_value(value):
    """value (a string, or lists and dicts of them, as JSON gives) with every string clean()."""
    if isinstance(value, str):
        return clean(value)[0]
    if isinstance(value, list):
        return [clean_value(v) for v in value]
    if isinstance(value, dict):
        return {k: clean_value(v) for k, v in value.items()}
    return value


def _unclean(value):
    """Characters clean() would replace in the strings of value (JSON: lists, dicts)."""
    if isinstance(value, str):
        return clean(value)[1]
    if isinstance(value, list):
        return sum(_unclean(v) for v in value)
    if isinstance(value, dict):
        return sum(_unclean(v) for v in value.values())
    return 0
