"""Upload mode "fields" on the board: a receipt's consumption data, read without codecs.

Only the fields leave the board in this mode, so the board must read every line itself, and
MicroPython has no code-page or CJK codecs: the parser leaves such lines undecoded (text None,
their spans kept). Here each undecoded line becomes readable text with exactly one character
per byte, from the tables in codec_tables.py:

- single-byte code pages (cp858, cp1252, ...) decode fully;
- in CJK text (GB18030, Big5, Shift_JIS, CP949) every keyword the extractor knows ("合计",
  "现金", "会员卡号", "元", ...) is found in the bytes at a character boundary and written as
  itself, padded with spaces to its byte length; every other character reads PLACEHOLDER;
- an item name holding a PLACEHOLDER is sent as its bytes instead ("name_raw": the spans of its
  byte range), which the server decodes, so the name is not lost.

One character per byte keeps positions: the bytes of any piece of a readable line are the same
range of the line's spans. The extractor itself is fields.py, as on the server.
"""
from . import codec_tables
from .cardmask import mask_cards
from .codepages import UNDEFINED, code_point, page_base
from .escpos_parser import _apply_intl
from .fields import Extractor
from .protocol import MAX_FIELD_TEXT, b64

PLACEHOLDER = "\u3013"   # 〓 (geta mark: a character the printer's text has and we cannot show)
_CJK = ("gb18030", "big5", "shift_jis", "shift_jis_2004", "cp949")


class Reader:
    """Reads undecoded lines; holds the keyword table of the CJK encoding it last met."""

    def __init__(self):
        self._words = None
        self._keys = {}

    def line(self, spans):
        """The readable text of an undecoded line's spans ((encoding, intl, bytes), ...)."""
        return "".join(_apply_intl(self._span(enc, raw), intl) if intl else self._span(enc, raw)
                       for enc, intl, raw in spans)

    def _span(self, enc, raw):
        if enc in _CJK:
            return self._cjk(enc, raw)
        if enc == "utf-8" or enc == "jis":
            return "".join(chr(b) if b < 0x80 else PLACEHOLDER for b in raw)
        base = page_base(enc)
        if base is None:
            base = page_base("cp437")     # the parser's fallback for unknown pages
        out = bytearray()       # UTF-8, decoded once: no object per character on the heap
        for b in raw:
            b = code_point(base, b)
            if b == UNDEFINED:
                b = 0x3013         # PLACEHOLDER
            if b < 0x80:
                out.append(b)
            elif b < 0x800:
                out.append(0xC0 | b >> 6)
                out.append(0x80 | b & 0x3F)
            else:
                out.append(0xE0 | b >> 12)
                out.append(0x80 | b >> 6 & 0x3F)
                out.append(0x80 | b & 0x3F)
        return out.decode()

    def _cjk(self, enc, raw):
        out = [chr(b) if b < 0x80 else PLACEHOLDER for b in raw]
        starts = _char_starts(enc, raw)
        taken = bytearray(len(raw))
        words, keys = self._table(enc)
        for k in range(len(keys)):          # longest words first
            key = keys[k]
            if not key:
                continue
            at = raw.find(key)
            while at >= 0:
                end = at + len(key)
                if starts[at] and not any(taken[at:end]):
                    word = words[k]
                    for i in range(at, end):
                        taken[i] = 1
                        out[i] = " "
                    for i in range(len(word)):
                        out[at + i] = word[i]
                at = raw.find(key, end)
        return "".join(out)

    def _table(self, enc):
        if self._words is None:
            self._words = codec_tables.WORDS.split("|")
        key = "shift_jis" if enc == "shift_jis_2004" else enc
        if key not in self._keys:
            self._keys = {key: getattr(codec_tables, key.upper()).split(b"\0")}
        return self._words, self._keys[key]


def _char_starts(enc, raw):
    """1 at every byte that starts a character, 0 inside multibyte characters."""
    n = len(raw)
    starts = bytearray(n)
    i = 0
    while i < n:
        starts[i] = 1
        b = raw[i]
        if b < 0x80:
            i += 1
        elif enc == "gb18030":
            i += 4 if i + 1 < n and 0x30 <= raw[i + 1] <= 0x39 else 2
        elif enc.startswith("shift_jis"):
            i += 1 if 0xA1 <= b <= 0xDF else 2
        else:
            i += 2
    return starts


def span_slice(spans, start, end):
    """The spans ((encoding, intl, bytes), ...) covering bytes start..end of their join, out to
    whole characters (a readable CJK word is padded with spaces: "）" reads "） ")."""
    out = []
    pos = 0
    for enc, intl, raw in spans:
        a = max(start - pos, 0)
        b = min(end - pos, len(raw))
        if a < b:
            if enc in _CJK:
                starts = _char_starts(enc, raw)
                while b < len(raw) and not starts[b]:
                    b += 1
            out.append((enc, intl, raw[a:b]))
        pos += len(raw)
    return out


def receipt_fields(receipt):
    """The FIELD_KEYS of a receipt.Receipt, as protocol.record_from_fields sends them; an item
    name the board cannot read comes as "name": None with "name_raw": [[encoding, intl,
    base64], ...]. Card numbers are masked in every line first."""
    reader = Reader()
    lines = []
    for i in range(len(receipt.lines)):
        line = receipt.lines[i]
        if line is None:
            line = reader.line(receipt.raw_lines.get(i, ()))
        lines.append(mask_cards(line))    # a number split across two decoded spans joins here
    extractor = Extractor(lines).run(lines)
    found = extractor.result()
    for key in ("receipt_no", "member_id"):
        if found[key] is not None:
            found[key] = found[key][:MAX_FIELD_TEXT]   # the server refuses longer text
    for item, seen in zip(found["items"], extractor.items):
        if item["name"] is not None:
            item["name"] = item["name"][:MAX_FIELD_TEXT]
        name = item["name"]
        if name is None or PLACEHOLDER not in name:
            continue
        spans = _name_spans(lines, receipt.raw_lines, name, seen[4], seen[5])
        if spans is None:
            continue
        item["name"] = None
        item["name_raw"] = [[enc, intl, b64(raw)] for enc, intl, raw in spans]
    return found


def _name_spans(lines, raw_lines, name, first, last):
    """The raw spans of an item's name read from lines first..last: within one line, or wrapped
    onto the next (the extractor joins two lines' names with a space); None if not found."""
    for i in range(first, last + 1):
        at = lines[i].find(name) if i in raw_lines else -1
        if at >= 0:
            return span_slice(raw_lines[i], at, at + len(name))
    k = name.find(" ")
    while k >= 0:
        head, tail = name[:k], name[k + 1:]
        for i in range(first, last):
            if i in raw_lines and i + 1 in raw_lines:
                a = lines[i].find(head)
                b = lines[i + 1].find(tail)
                if a >= 0 and b >= 0:
                    spans = span_slice(raw_lines[i], a, a + len(head))
                    return spans + [(spans[-1][0], spans[-1][1], b" ")] + span_slice(
                        raw_lines[i + 1], b, b + len(tail))
        k = name.find(" ", k + 1)
    return None
