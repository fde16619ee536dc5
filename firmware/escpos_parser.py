"""Streaming ESC/POS parser: the byte stream a POS sends to a receipt printer, as receipt events.

    p = Parser()                       # Epson-compatible printer
    for event in p.feed(chunk): ...    # any chunk: bytes, bytearray or memoryview
    for event in p.close(): ...        # end of stream

Events are tuples whose first item is the kind:
    (LINE, text, raw)          a printed text line. text is Unicode with trailing spaces removed;
                               on MicroPython (no codecs) a line that is not plain ASCII/UTF-8 has
                               text None and raw = ((encoding, intl_set, bytes), ...) instead
    (BARCODE, symbology, data) a 1D barcode (data without the printer's HRI text)
    (CODE2D, type, data)       a 2D code (QR, PDF417, ...) when it is printed
    (IMAGE, kind, width, height, size)  an image: raster | column | graphics | star-raster | logo
    (CUT, "full"|"partial")
    (RECEIPT_END, reason, cut, offset)
                               reason: cut | idle | init | abort | end; cut: full | partial |
                               None; offset: stream position just after the receipt's last byte
    (DRAWER, pin)              cash drawer kick
    (REQUEST, name)            a command that makes the printer answer (a reply will come back)

Framing follows ../shared/docs/escpos-commands.md: every command is sized exactly, payloads are
skipped in bulk by a byte counter, unknown commands take 2 bytes (ESC/FS/GS x) or the P16 length
(ESC/FS/GS ( x), absurd lengths count as desync. Memory is bounded whatever the input: line,
barcode, 2D-code and scan lengths are capped; what is cut off is counted in stats().
Events are identical however the stream is split into chunks.
"""
from .compat import const

try:
    import codecs as _codecs
except ImportError:
    _codecs = None

LINE = "line"
BARCODE = "barcode"
CODE2D = "code2d"
IMAGE = "image"
CUT = "cut"
RECEIPT_END = "receipt_end"
DRAWER = "drawer"
REQUEST = "request"
# One shared event for every blank line: a receipt fed by LFs costs a list slot per line.
_BLANK_LINE = (LINE, "", None)

_ESC = const(0x1B)
_GS = const(0x1D)
_FS = const(0x1C)
_DLE = const(0x10)
_LF = const(0x0A)
_CR = const(0x0D)

_TEXT = const(0)
_HEADER = const(1)
_SKIP = const(2)
_COLLECT = const(3)
_SCAN = const(4)
_DLE_WAIT = const(5)

_SCAN_TABS = const(0)
_SCAN_BARCODE = const(1)   # GS k function A: NUL, alphabet or fixed maximum ends it
_SCAN_UNTIL = const(2)     # until a terminator byte (Star barcode RS, NUL lists)
_SCAN_COUNTER = const(3)   # GS C ; five fields each ended by ';'

_TEXT_WINDOW = const(256)  # bytes looked at per text step: bounds work on lines without LF
_WORK_SIZE = const(512)    # memoryview chunks are copied here in pieces (memoryview has no find)
_HDR_SIZE = const(24)
_MAX_TABS = const(32)
_MAX_SCAN = const(255)
_MAX_PAGE_LINES = const(256)
_MAX_MACRO = const(64)
_CHAR_DOTS = const(12)     # font A width: turns ESC $ dot positions into columns

# Fixed total lengths (prefix included) by command byte; 0 = special or unknown.
def _table(spec):
    t = bytearray(256)
    for length, cmds in spec:
        for c in cmds:
            t[c] = length
    return bytes(t)


_ESC_FIX = _table((
    (2, b"\x0c2<@LSimqv"),
    (3, b" !%-3=?ACEFGJKMRTUVadeprtu{+/\x13y~"),
    (4, b"$\\cfB\x12"),
    (5, b"p7"),
    (10, b"W"),
))
_FS_FIX = _table((
    (2, b"&.Lbc\x0e\x14JK\x0f\x12G"),
    (3, b"!-CWIir"),
    (4, b"?Sp"),
))
_GS_FIX = _table((
    (2, b"\x0c:c"),
    (3, b"!/BEHITabfhjrw|"),
    (4, b"$LPW\\"),
    (5, b"^z"),
    (6, b"g"),
))
# Fixed-length commands that do something beyond style (see _exec); the rest only need framing.
_ACTS = _table(((1, b"@tRdJKeimp=LS\x0c$\\uv"),))
_GS_ACTS = _table(((1, b"arIg/:^"),))
_FS_ACTS = _table(((1, b"&.Cp"),))
_STAR_ACTS = _table(((1, b"@daJIR\x06\x0c"),))
_STAR_ESC_FIX = _table((
    (2, b"@EF45\x0e\x14MP:gpO0\x32"),
    (3, b"-_Wh3RtlQNzJIadU%/\x06\x0c"),
    (4, b"i\x07?"),
))

_CUTS = {0: "full", 1: "partial", 48: "full", 49: "partial", 65: "full", 66: "partial",
         97: "full", 98: "partial", 103: "full", 104: "partial"}
_STAR_CUTS = {0: "full", 1: "partial", 2: "full", 3: "partial",
              48: "full", 49: "partial", 50: "full", 51: "partial"}

_BARCODE_A = ("UPC-A", "UPC-E", "EAN13", "EAN8", "CODE39", "ITF", "CODABAR")
_BARCODE_B = ("UPC-A", "UPC-E", "EAN13", "EAN8", "CODE39", "ITF", "CODABAR", "CODE93",
              "CODE128", "GS1-128", "GS1-DATABAR", "GS1-DATABAR-TRUNCATED",
              "GS1-DATABAR-LIMITED", "GS1-DATABAR-EXPANDED", "CODE128-AUTO")
_BARCODE_A_MAX = (12, 12, 13, 8, 255, 255, 255)
_DIGITS = b"0123456789"
_BARCODE_A_ALPHABET = (_DIGITS, _DIGITS, _DIGITS, _DIGITS,
                       _DIGITS + b"ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./", _DIGITS,
                       _DIGITS + b"ABCDabcd$+-./:")
_STAR_BARCODES = ("UPC-E", "UPC-A", "EAN8", "EAN13", "CODE39", "ITF", "CODE128", "CODE93",
                  "CODABAR")
_CODE2D = {48: "PDF417", 49: "QR", 50: "MAXICODE", 51: "GS1-DATABAR-2D", 52: "COMPOSITE",
           53: "AZTEC", 54: "DATAMATRIX"}
_CODE2D_PREFIX = {51: 2, 52: 3}   # bytes before the data after fn 80 (else 1: m)

# ESC t numbering per vendor ("n:encoding ..."); unlisted numbers fall back to Epson's table.
_EPSON_PAGES = ("0:cp437 1:katakana 2:cp850 3:cp860 4:cp863 5:cp865 11:cp851 12:cp853 13:cp857 "
                "14:cp737 15:iso8859_7 16:cp1252 17:cp866 18:cp852 19:cp858 20:thai42 21:cp874 "
                "30:tcvn3_1 31:tcvn3_2 32:cp720 33:cp775 34:cp855 35:cp861 36:cp862 37:cp864 "
                "38:cp869 39:iso8859_2 40:iso8859_15 41:cp1098 42:cp774 43:cp772 44:cp1125 "
                "45:cp1250 46:cp1251 47:cp1253 48:cp1254 49:cp1255 50:cp1256 51:cp1257 "
                "52:cp1258 53:kz1048")
_VENDOR_PAGES = {
    "epson": "",
    "star": ("0:cp437 1:cp437 2:katakana 3:cp437 4:cp858 5:cp852 6:cp860 7:cp861 8:cp863 "
             "9:cp865 10:cp866 11:cp855 12:cp857 13:cp862 14:cp864 15:cp737 16:cp851 17:cp869 "
             "18:cp928 19:cp772 20:cp774 21:cp874 32:cp1252 33:cp1250 34:cp1251 96:thai42 "
             "97:thai11 98:thai13 99:thai14 100:thai16 101:thai17 102:thai18"),
    "bixolon": ("21:cp862 22:cp864 23:thai42 24:cp1253 25:cp1254 26:cp1257 27:farsi "
                "28:cp1251 29:cp737 30:cp775 31:thai14 32:cp862 33:cp1255 34:thai11 35:thai18 "
                "37:cp857 38:iso8859_7 39:thai16 40:cp1256 41:cp1258 42:khmer 46:cp866 "
                "47:cp1250 49:tcvn3_1 50:tcvn3_2 51:viscii"),
    "zjiang": ("6:latin_1 7:cp737 8:cp862 9:cp852 10:iran 20:iran2 21:cp3011 22:cp864 "
               "23:cp1251 24:cp747 25:cp1257 27:cp1258 28:cp864 31:cp862 32:cp1255 50:cp437 "
               "52:cp437 53:cp858 54:cp852 55:cp860 56:cp861 57:cp863 58:cp865 59:cp866 "
               "60:cp855 61:cp857 62:cp862 63:cp864 64:cp737 65:cp851 66:cp869 68:cp772 "
               "69:cp774 71:cp1252 72:cp1250 73:cp1251"),
    "xprinter": ("6:latin_1 7:cp1253 8:cp862 9:cp3012 11:cp1255 21:cp3011 22:cp864 "
                 "23:cp1251 24:cp737 25:cp1257 33:cp1256"),
    "rongta": ("6:cp1251 7:cp866 8:mik 9:cp755 10:iran 15:cp862 17:cp1253 20:iran2 "
               "21:cp3011 22:cp864 23:latin_1 24:cp737 25:cp1257 26:cp874 27:cp720 28:cp855 "
               "29:cp857 30:cp1250 31:cp775 32:cp1254 33:cp1255 34:cp1256 35:cp1258 "
               "36:iso8859_2 37:iso8859_3 38:iso8859_4 39:iso8859_5 40:iso8859_6 "
               "41:iso8859_7 42:iso8859_8 43:iso8859_9 44:iso8859_15 46:cp856 47:cp874"),
}
ENCODINGS = (None, "gb18030", "big5", "shift_jis", "cp949")
PROFILES = ("epson", "star")
VENDORS = tuple(sorted(_VENDOR_PAGES))

# ESC R: which ASCII characters each international set replaces ("from to" pairs).
_INTL = {
    1: "@à[°\\ç]§{é|ù}è~¨", 2: "@§[Ä\\Ö]Ü{ä|ö}ü~ß", 3: "#£", 4: "[Æ\\Ø]Å{æ|ø}å",
    5: "$¤@É[Ä\\Ö]Å^Ü`é{ä|ö}å~ü", 6: "[°]é`ù{à|ò}è~ì", 7: "#₧[¡\\Ñ]¿`´{¨|ñ", 8: "\\¥",
    9: "$¤@É[Æ\\Ø]Å^Ü`é{æ|ø}å~ü", 10: "@É[Æ\\Ø]Å^Ü`é{æ|ø}å~ü",
    11: "@á[¡\\Ñ]¿^é`´{í|ñ}ó~ú", 12: "@á[¡\\Ñ]¿^é`ü{í|ñ}ó~ú", 13: "\\₩",
    14: "@Ž[Š\\Đ]Ć^Č`ž{š|đ}ć~č", 15: "$¥", 16: "#₫", 17: "%٪*٭",
}
# Names this module uses that Python spells differently (or lacks: read from codec_tables.py
# if it has them, else as cp437).
_CODEC = {"jis": "euc_jp"}


def page_encoding(vendor, n):
    """The encoding a vendor's printers use for ESC t n, or None when the number is unknown.

    Looked up in the table strings themselves: no per-entry objects on the board's heap.
    """
    key = " %d:" % n
    for spec in (_VENDOR_PAGES[vendor], _EPSON_PAGES):
        k = (" " + spec).find(key)
        if k >= 0:
            k += len(key) - 1
            end = spec.find(" ", k)
            return spec[k:end if end >= 0 else len(spec)]
    return None


def is_span_encoding(name):
    """True for an encoding name this parser can put in an undecoded line's span (the server
    refuses any other: a codec named by a device must be a text codec of ours)."""
    if name in ENCODINGS or name in ("utf-8", "jis", "shift_jis_2004", "cp437"):
        return bool(name)
    key = ":%s " % name
    for spec in _VENDOR_PAGES.values():
        if key in spec + " ":
            return True
    return key in _EPSON_PAGES + " "


def decode_text(raw, encoding, intl=0, errors="backslashreplace"):
    """Bytes of one text run as Unicode; None where this interpreter has no codec for them.

    Bytes the codec rejects (a broken multibyte sequence) read as \\xNN, so they show and can be
    counted; errors="strict" raises UnicodeError instead.
    """
    try:
        text = raw.decode("utf-8")
        # same length: plain ASCII, the same in every code page (cheaper than max(raw) < 0x80);
        # JIS Kanji pairs are ASCII bytes, so they never take this path
        if encoding == "jis" or (encoding != "utf-8" and len(text) != len(raw)):
            text = None
    except UnicodeError:
        text = None
    if text is None:
        if _codecs is None:
            return None        # the board: the server decodes (fields_mode.py reads tables)
        if encoding == "jis":
            raw = bytes(b | 0x80 if b >= 0x21 else b for b in raw)
        codec = _CODEC.get(encoding, encoding)
        try:
            _codecs.lookup(codec)
        except LookupError:
            text = _table_text(raw, encoding, errors)
            codec = "cp437"
        if text is None:
            text = bytes(raw).decode(codec, errors)
    if intl and encoding != "utf-8":
        text = _apply_intl(text, intl)
    return text


def _table_text(raw, encoding, errors):
    """A page Python has no codec for (katakana, TCVN-3, ...), from codec_tables.py (CPython
    only: the board never decodes these itself); None if it is not there either."""
    from . import codec_tables
    names = codec_tables.PAGES.split()
    if encoding not in names:
        return None
    base = names.index(encoding) * 256 - 256
    out = []
    for b in raw:
        code = b if b < 0x80 else \
            codec_tables.TABLE[base + 2 * b] << 8 | codec_tables.TABLE[base + 2 * b + 1]
        if code != 0xFFFF:
            out.append(chr(code))
        elif errors == "strict":
            raise UnicodeError("byte 0x%02x is not in %s" % (b, encoding))
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


def decode_line(spans, errors="backslashreplace"):
    """The text of one printed line from its runs ((encoding, intl_set, bytes), ...): each run
    decoded, joined, trailing spaces removed. None where this interpreter lacks a codec (the
    board); the server decodes the same spans with this same function."""
    if len(spans) == 1:
        enc, intl, raw = spans[0]
        text = decode_text(raw, enc, intl, errors)
        return None if text is None else text.rstrip(" ")
    parts = []
    for enc, intl, raw in spans:
        text = decode_text(raw, enc, intl, errors)
        if text is None:
            return None
        parts.append(text)
    return "".join(parts).rstrip(" ")


def _apply_intl(text, intl):
    pairs = _INTL.get(intl)
    if pairs:
        for k in range(0, len(pairs), 2):
            if pairs[k] in text:
                text = text.replace(pairs[k], pairs[k + 1])
    return text


def _latin1(data):
    return "".join(chr(b) for b in data)


def _code128_text(data):
    """Human-readable CODE128 data: {A {B {C code sets, {S shift, {1-{4 FNC, {{ literal."""
    out = []
    code_c = False
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b == 0x7B and i + 1 < n:   # '{'
            sel = data[i + 1]
            i += 2
            if sel == 0x43:           # 'C'
                code_c = True
            elif sel in (0x41, 0x42):
                code_c = False
            elif sel == 0x7B:
                out.append("{")
            continue
        if code_c:
            out.append("%02d" % b if b < 100 else "?")
        else:
            out.append(chr(b))
        i += 1
    return "".join(out)


def _code_text(data):
    try:
        return bytes(data).decode("utf-8")
    except UnicodeError:
        return _latin1(data)


class Parser:
    """Streaming ESC/POS parser. See the module docstring for the events.

    Options:
        profile      "epson" (default: Epson and compatibles) or "star" (Star Line Mode)
        codepage_map vendor numbering of ESC t: epson, star, bixolon, zjiang, xprinter, rongta
        encoding     the printer's default multibyte encoding: None, gb18030, big5, shift_jis,
                     cp949. When set, the printer starts (and ESC @ returns) in CJK mode.
        codepage     ESC t number the printer starts with (default 0)
        split_on_init  also end a receipt at ESC @ after printed content
        keep_images  add the payload bytes to IMAGE events (bounded by max_payload)
        max_line, max_code, max_payload  caps (bytes) for a line, a 1D/2D code, one payload
        kanji_glyph_bytes  FS 2 glyph size (72 for 24x24 fonts)
    """

    def __init__(self, profile="epson", codepage_map=None, encoding=None, codepage=0,
                 split_on_init=False, keep_images=False, max_line=512, max_code=8192,
                 max_payload=16 * 1024 * 1024, kanji_glyph_bytes=72):
        if profile not in PROFILES:
            raise ValueError("unknown profile %r (known: %s)" % (profile, ", ".join(PROFILES)))
        if encoding not in ENCODINGS:
            raise ValueError("unknown encoding %r (known: %s)"
                             % (encoding, ", ".join(e for e in ENCODINGS if e)))
        self._star = profile == "star"
        self._vendor = codepage_map or ("star" if self._star else "epson")
        if self._vendor not in _VENDOR_PAGES:
            raise ValueError("unknown code-page map %r (known: %s)"
                             % (self._vendor, ", ".join(sorted(_VENDOR_PAGES))))
        self._default_mb = encoding
        self._default_page = codepage
        self._split_on_init = split_on_init
        self._keep_images = keep_images
        self._max_line = max_line
        self._max_code = max_code
        self._max_payload = max_payload
        self._glyph_bytes = kanji_glyph_bytes
        self._line = bytearray(max_line)
        self._line_mv = memoryview(self._line)
        self._hdr = bytearray(_HDR_SIZE)
        self._hdr_mv = memoryview(self._hdr)
        self._work = bytearray(_WORK_SIZE)
        self._work_mv = memoryview(self._work)
        self._out = []
        self._stats = {}
        for key in ("bytes", "commands", "lines", "barcodes", "codes2d", "images", "image_bytes",
                    "cuts", "receipts", "requests", "drawer_kicks", "unknown_commands", "desync",
                    "truncated_lines", "truncated_codes", "page_lines_dropped",
                    "suppressed_bytes", "unknown_codepages"):
            self._stats[key] = 0
        self._on_prefix_b = self._on_prefix
        self._exec_b = self._exec
        self._done_b = self._done
        self._reset_stream()

    # ---- public API -------------------------------------------------------------------------

    def feed(self, data, n=None):
        """Parse one chunk; returns the list of events completed by it.

        n: parse only data[:n]. A bytes or bytearray is parsed in place (the tap passes its
        read buffer and the count read); a memoryview is copied in pieces first, since it has
        no find().
        """
        self._out = out = []
        if n is None:
            n = len(data)
        if isinstance(data, memoryview):
            pos = 0
            while pos < n:
                k = n - pos if n - pos < _WORK_SIZE else _WORK_SIZE
                self._work_mv[:k] = data[pos:pos + k]
                self._run(self._work, k)
                pos += k
        else:
            self._run(data, n)
        return out

    def idle(self):
        """The caller saw no bytes for its idle gap: end the receipt in progress, if any."""
        self._out = out = []
        self._end_receipt("idle")
        return out

    def close(self):
        """End of stream: returns the events still pending, then starts afresh (offsets from 0)."""
        self._out = out = []
        self._end_receipt("end")
        self._reset_stream()
        return out

    def stats(self):
        """Counters: bytes, commands, lines, codes, images, cuts, receipts, and what was cut off."""
        return dict(self._stats)

    # ---- state ------------------------------------------------------------------------------

    def _reset_stream(self):
        self._base = 0             # stream offset of the buffer being parsed
        self._cursor = 0           # stream offset just after the command being run
        self._mode = _TEXT
        self._hlen = 0
        self._need = 0
        self._next = None
        self._remain = 0
        self._data = None
        self._data_cap = 0
        self._content = False
        self._pending_img = None
        self._page = None
        self._macro = []
        self._raster = False
        self._reset_printer()

    def _reset_printer(self):
        """ESC @: power-on text state (code table, CJK mode, page mode, device select)."""
        self._llen = 0
        self._runs = []
        self._run_key = None
        self._line_cut = False
        self._nl = 0
        self._page_mode = False
        self._page = None
        self._selected = True
        self._utf8 = False
        self._intl = 0
        self._page_no = self._default_page
        self._page_vendor = self._vendor
        self._kanji = self._default_mb is not None
        self._mb = self._default_mb or "gb18030"
        self._tabs = None
        self._stored = {}
        self._recording = False
        self._set_key()

    def _set_key(self):
        if self._utf8:
            enc = "utf-8"
        elif self._kanji:
            enc = self._mb
        else:
            enc = page_encoding(self._page_vendor, self._page_no) or "cp437"
        self._key = (enc, self._intl)

    # ---- main loop --------------------------------------------------------------------------

    def _run(self, buf, n):
        mv = memoryview(buf)
        i = 0
        self._stats["bytes"] += n
        base = self._base
        while i < n:
            mode = self._mode
            if mode == _TEXT:
                if self._raster:
                    i = self._raster_byte(buf[i], i)
                else:
                    i = self._text(buf, mv, i, n)
            elif mode == _HEADER:
                have = self._hlen
                take = self._need - have
                take = min(take, n - i)
                self._hdr_mv[have:have + take] = mv[i:i + take]
                i += take
                self._hlen = have + take
                if self._hlen == self._need:
                    self._cursor = base + i
                    self._next()
            elif mode == _SKIP:
                take = self._remain if self._remain < n - i else n - i
                if self._data is not None:
                    self._keep(mv, i, take)
                i += take
                self._remain -= take
                if self._remain == 0:
                    self._next()
            elif mode == _COLLECT:
                take = self._remain if self._remain < n - i else n - i
                self._keep(mv, i, take)
                i += take
                self._remain -= take
                if self._remain == 0:
                    self._next()
            elif mode == _SCAN:
                i = self._scan(buf, i, n)
            else:
                i = self._dle_lookahead(buf[i], i)
        self._base = base + n

    def _keep(self, mv, i, take):
        room = self._data_cap - len(self._data)
        if take > room:
            self._data_overflow = True
            take = room
        if take > 0:
            self._data.extend(mv[i:i + take])

    def _text(self, buf, mv, i, n):
        """Text state: printable runs in bulk (find, min), line feeds inline, else a control."""
        while i < n:
            stop = i + _TEXT_WINDOW
            stop = min(stop, n)
            j = buf.find(b"\n", i, stop)
            if j < 0:
                j = stop
            if j > i:
                if min(mv[i:j]) < 0x20:
                    k = i
                    while buf[k] >= 0x20:
                        k += 1
                    j = k
                if j > i:
                    self._put_text(mv, i, j)
            if j >= n:
                return j
            c = buf[j]
            if c == _LF:
                if self._nl == _CR:
                    self._nl = 0           # second half of CR LF
                else:
                    self._newline()
                    self._nl = _LF
                i = j + 1
            elif c >= 0x20:
                i = j                      # window full of text: look further
            else:
                return self._control(c, buf, j, n)
        return i

    def _put_text(self, mv, i, j):
        self._nl = 0
        if not self._selected:
            self._stats["suppressed_bytes"] += j - i
            return
        llen = self._llen
        if self._run_key is not self._key:
            self._runs.append((llen, self._key))
            self._run_key = self._key
        k = j - i
        if llen + k > self._max_line:
            if not self._line_cut:
                self._line_cut = True
                self._stats["truncated_lines"] += 1
            k = self._max_line - llen
        if k > 0:
            self._line_mv[llen:llen + k] = mv[i:i + k]
            self._llen = llen + k

    def _pad_to(self, column):
        """Spaces up to a column (at least one between printed words): ESC $, ESC \\, HT."""
        llen = self._llen
        if llen == 0 and column <= 0:
            return
        pad = column - llen
        if pad < 1:
            pad = 1 if llen and self._line[llen - 1] != 0x20 else 0
        if pad:
            spaces = b" " * pad
            self._put_text(memoryview(spaces), 0, pad)

    def _control(self, c, buf, j, n):
        if c == _LF or c == _CR:
            if self._nl and self._nl != c:
                self._nl = 0           # second half of CR LF / LF CR
            else:
                self._newline()
                self._nl = c
            return j + 1
        self._nl = 0
        if c == _ESC or c == _GS or (c == _FS and not self._star):
            if j + 1 < n:
                # fast path: a fixed-length command wholly in this buffer runs at once
                if c == _ESC:
                    total = (_STAR_ESC_FIX if self._star else _ESC_FIX)[buf[j + 1]]
                else:
                    total = (_GS_FIX if c == _GS else _FS_FIX)[buf[j + 1]]
                if total and j + total <= n:
                    self._hdr_mv[:total] = memoryview(buf)[j:j + total]
                    self._hlen = total
                    self._cursor = self._base + j + total
                    self._exec()
                    return j + total
            self._begin(c)
        elif c == _DLE:
            if j + 1 < n:
                return self._dle_lookahead(buf[j + 1], j + 1)
            self._mode = _DLE_WAIT
        elif c == 0x09:
            col = self._llen
            stops = self._tabs
            target = (col // 8 + 1) * 8
            if stops:
                for s in stops:
                    if s > col:
                        target = s
                        break
            self._pad_to(target)
        elif c == 0x0C:
            if self._page_mode:
                self._print_page()
                self._page_mode = False
                self._page = None
        elif c == 0x18:
            if self._page_mode:
                self._drop_page()
            elif self._star:
                self._end_line()
                self._reset_printer()
        elif self._star:
            self._star_control(c)
        return j + 1

    def _star_control(self, c):
        if c == 0x05 or c == 0x04:
            self._request("ENQ" if c == 0x05 else "EOT")
        elif c == 0x07 or c == 0x1C:
            self._drawer((1,))
        elif c == 0x1A or c == 0x19:
            self._drawer((2,))

    def _dle_lookahead(self, b, i):
        # DLE starts a command only before EOT, ENQ or DC4; otherwise it is an ignored control
        # byte and b is ordinary data (not consumed here).
        self._mode = _TEXT
        if b == 0x04 or b == 0x05 or b == 0x14:
            self._hdr[0] = _DLE
            self._hdr[1] = b
            self._hlen = 2
            self._want(3, self._on_dle)
            return i + 1
        return i

    # ---- command framing helpers ------------------------------------------------------------

    def _begin(self, c):
        self._hdr[0] = c
        self._hlen = 1
        self._need = 2
        self._next = self._on_prefix_b
        self._mode = _HEADER

    def _want(self, need, then):
        """Collect header bytes up to `need` in total, then call `then`."""
        if self._hlen >= need:
            then()
            return
        self._need = need
        self._next = then
        self._mode = _HEADER

    def _fixed(self, total):
        """A command of a known total length: run it once its bytes are in."""
        self._want(total, self._exec_b)

    def _skip(self, count, then=None):
        """Skip `count` payload bytes in bulk, then call `then` (default: command done)."""
        if count <= 0:
            (then or self._done_b)()
            return
        self._remain = count
        self._next = then or self._done_b
        self._mode = _SKIP

    def _collect(self, count, cap, then):
        """Keep up to `cap` of the next `count` bytes in self._data, then call `then`."""
        self._data = bytearray()
        self._data_cap = cap
        self._data_overflow = False
        if count <= 0:
            then()
            return
        self._remain = count
        self._next = then
        self._mode = _COLLECT

    def _done(self):
        self._mode = _TEXT
        self._hlen = 0
        self._data = None
        self._stats["commands"] += 1

    def _unknown(self):
        self._stats["unknown_commands"] += 1
        self._done()

    def _desync(self):
        """An absurd length: drop what was read of the command and carry on as text."""
        self._stats["desync"] += 1
        self._done()

    def _too_big(self, size):
        return size > self._max_payload

    def _u16(self, at):
        return self._hdr[at] | (self._hdr[at + 1] << 8)

    # ---- prefixes ---------------------------------------------------------------------------

    def _on_prefix(self):
        p = self._hdr[0]
        c = self._hdr[1]
        if self._star:
            if p == _ESC:
                self._star_esc(c)
            else:
                self._gs(c)
            return
        if p == _ESC:
            total = _ESC_FIX[c]
            if total:
                self._fixed(total)
            elif c == 0x28:
                self._want(5, self._p16_skip)
            elif c == 0x2A:
                self._want(3, self._esc_star)
            elif c == 0x26:
                self._want(5, self._esc_amp)
            elif c == 0x44:
                self._scan_start(_SCAN_TABS)
            elif c == 0x1D:
                self._want(3, self._esc_gs)
            else:
                self._unknown()
        elif p == _GS:
            self._gs(c)
        else:
            self._fs(c)

    def _gs(self, c):
        total = _GS_FIX[c]
        if total:
            self._fixed(total)
        elif c == 0x28:
            self._want(5, self._gs_paren)
        elif c == 0x6B:
            self._want(3, self._gs_k)
        elif c == 0x76:
            self._want(3, self._gs_v)
        elif c == 0x56:
            self._want(3, self._gs_cut)
        elif c == 0x38:
            self._want(3, self._gs_8)
        elif c == 0x2A:
            self._want(4, self._gs_star)
        elif c == 0x51:
            self._want(3, self._gs_q)
        elif c == 0x44:
            self._want(4, self._gs_d)
        elif c == 0x43:
            self._want(3, self._gs_c)
        elif c >= 0x80:
            self._fixed(3)        # Custom's GS E0 n and friends
        else:
            self._unknown()

    def _fs(self, c):
        total = _FS_FIX[c]
        if total:
            self._fixed(total)
        elif c == 0x28:
            self._want(5, self._fs_paren)
        elif c == 0x32:
            self._want(4, lambda: self._skip(self._glyph_bytes))
        elif c == 0x61:
            self._want(3, lambda: self._fixed(4 if self._hdr[2] == 0x30 else 3))
        elif c == 0x67:
            self._want(3, self._fs_g)
        elif c == 0x71:
            self._want(3, self._fs_q)
        else:
            self._unknown()

    # ---- fixed-length commands that change state or mean something ---------------------------

    def _exec(self):
        h = self._hdr
        p = h[0]
        c = h[1]
        if p == _ESC:
            acts = _STAR_ACTS if self._star else _ACTS
        else:
            acts = _GS_ACTS if p == _GS else _FS_ACTS
        if not acts[c]:
            self._done()
            return
        if self._star and p == _ESC:
            self._star_exec(c)
        elif p == _ESC:
            if c == 0x40:
                self._init()
            elif c == 0x74:
                self._page_no = h[2]
                self._codepage_changed(self._vendor)
            elif c == 0x52:
                self._intl = h[2]
                self._set_key()
            elif c == 0x64 or c == 0x4A or c == 0x4B or c == 0x65:
                self._feed_lines()
            elif c == 0x69 or c == 0x6D:
                self._do_cut("partial")
            elif c == 0x70:
                self._drawer((5 if h[2] & 1 else 2,))
            elif c == 0x3D:
                self._end_line()
                self._selected = bool(h[2] & 1)
            elif c == 0x4C:
                self._end_line()
                self._page_mode = True
                self._page = []
            elif c == 0x53:
                self._drop_page()
                self._page_mode = False
            elif c == 0x0C:
                if self._page_mode:
                    self._print_page()
            elif c == 0x24:
                self._pad_to(self._u16(2) // _CHAR_DOTS)
            elif c == 0x5C:
                rel = self._u16(2)
                if rel < 0x8000:
                    self._pad_to(self._llen + rel // _CHAR_DOTS)
            elif c == 0x75 or c == 0x76:
                self._request("ESC " + chr(c))
        elif p == _GS:
            if c == 0x61:
                if h[2]:
                    self._request("GS a")
            elif c == 0x72 or c == 0x49:
                self._request("GS %s %d" % (chr(c), h[2]))
            elif c == 0x67:
                if h[2] == 0x32:
                    self._request("GS g 2")
            elif c == 0x2F:
                self._image("logo", 0, 0, 0)
            elif c == 0x3A:
                self._recording = not self._recording
                if self._recording:
                    self._macro = []
            elif c == 0x5E:
                self._replay_macro(h[2])
        else:
            if c == 0x26:
                self._kanji = True
                self._set_key()
            elif c == 0x2E:
                self._kanji = False
                self._set_key()
            elif c == 0x43:
                self._mb = ("jis", "shift_jis", "shift_jis_2004")[h[2] % 3] \
                    if h[2] in (0, 1, 2, 48, 49, 50) else self._mb
                self._set_key()
            elif c == 0x70:
                self._image("logo", 0, 0, 0)
        self._done()

    def _codepage_changed(self, vendor):
        if page_encoding(vendor, self._page_no) is None:
            self._stats["unknown_codepages"] += 1
        self._page_vendor = vendor
        self._set_key()

    def _init(self):
        self._end_line()
        if self._split_on_init:
            self._end_receipt("init", None, self._cursor - 2)
        self._reset_printer()

    # ---- DLE real-time commands -------------------------------------------------------------

    def _on_dle(self):
        kind = self._hdr[1]
        n = self._hdr[2]
        if kind == 0x04:
            if n in (7, 8, 18):
                self._want(4, lambda: self._dle_done("DLE EOT %d" % n))
            else:
                self._dle_done("DLE EOT %d" % n)
        elif kind == 0x05:
            if n == 2:
                self._end_receipt("abort")
            self._done()
        else:
            total = {1: 5, 2: 5, 3: 8, 7: 4, 8: 10}.get(n, 3)
            self._want(total, self._dc4)

    def _dle_done(self, name):
        self._request(name)
        self._done()

    def _dc4(self):
        fn = self._hdr[2]
        if fn == 1:
            self._drawer((5 if self._hdr[3] & 1 else 2,))
        elif fn in (2, 7, 8):
            self._request("DLE DC4 %d" % fn)
            if fn == 8:
                self._end_receipt("abort")
        self._done()

    # ---- ESC specials -----------------------------------------------------------------------

    def _p16_skip(self):
        self._skip(self._u16(3))

    def _esc_star(self):
        m = self._hdr[2]
        if m in (0, 1, 32, 33):
            self._want(5, self._esc_star_data)
        else:
            self._fixed(3)       # out-of-range m: the bytes after it are ordinary data

    def _esc_star_data(self):
        n = self._u16(3)
        dots = 24 if self._hdr[2] >= 32 else 8
        size = n * dots // 8
        self._image_payload("column", n, dots, size)

    def _esc_amp(self):
        y, c1, c2 = self._hdr[2], self._hdr[3], self._hdr[4]
        if not (1 <= y <= 6 and 0x20 <= c1 <= c2 <= 0x7E):
            self._desync()
            return
        self._glyphs_left = c2 - c1 + 1
        self._glyph_y = y
        self._want(6, self._esc_amp_glyph)

    def _esc_amp_glyph(self):
        x = self._hdr[5]
        if x > 48:
            self._desync()
            return
        self._glyphs_left -= 1
        self._skip(self._glyph_y * x, self._esc_amp_next)

    def _esc_amp_next(self):
        if self._glyphs_left:
            self._hlen = 5
            self._want(6, self._esc_amp_glyph)
        else:
            self._done()

    def _esc_gs(self):
        c = self._hdr[2]
        if c == 0x74:
            self._want(4, self._star_codepage)
        elif c == 0x07:
            self._fixed(6)
        elif c == 0x19:
            self._fixed(7)
        elif self._star and c == 0x79:
            self._want(4, self._star_qr)
        elif self._star and c == 0x78:
            self._want(4, self._star_pdf417)
        elif self._star and c == 0x53:
            self._want(9, self._star_raster_image)
        elif self._star and c == 0x28:
            self._want(6, lambda: self._skip(self._u16(4)))
        elif self._star and (c == 0x41 or c == 0x52):
            self._fixed(5)
        else:
            self._fixed(4)

    def _star_codepage(self):
        self._page_no = self._hdr[3]
        self._codepage_changed("star")
        self._done()

    # ---- GS specials ------------------------------------------------------------------------

    def _gs_cut(self):
        m = self._hdr[2]
        cut = _CUTS.get(m)
        if cut is None:
            self._unknown()
        elif m >= 65:
            self._want(4, lambda: self._cut_done(cut))
        else:
            self._cut_done(cut)

    def _cut_done(self, kind):
        self._do_cut(kind)
        self._done()

    def _gs_v(self):
        if self._hdr[2] != 0x30:
            self._unknown()
            return
        self._want(8, self._gs_v_data)

    def _gs_v_data(self):
        x = self._u16(4)
        y = self._u16(6)
        self._image_payload("raster", x * 8, y, x * y)

    def _gs_q(self):
        if self._hdr[2] != 0x30:
            self._unknown()
            return
        self._want(8, lambda: self._image_payload("raster", self._u16(4), self._u16(6) * 8,
                                                 self._u16(4) * self._u16(6)))

    def _gs_star(self):
        self._skip(8 * self._hdr[2] * self._hdr[3])

    def _gs_d(self):
        if self._hdr[2] != 0x30 or self._hdr[3] not in (0x43, 0x53):
            self._unknown()
            return
        self._want(15, self._gs_d_bmp)

    def _gs_d_bmp(self):
        h = self._hdr
        size = h[11] | (h[12] << 8) | (h[13] << 16) | (h[14] << 24)
        if h[9] != 0x42 or h[10] != 0x4D or size < 6 or self._too_big(size):
            self._desync()
            return
        self._skip(size - 6)

    def _gs_c(self):
        sub = self._hdr[2]
        if sub in (0x30, 0x32):
            self._fixed(5)
        elif sub == 0x31:
            self._fixed(9)
        elif sub == 0x3B:
            self._scan_start(_SCAN_COUNTER)
        else:
            self._unknown()

    def _gs_k(self):
        m = self._hdr[2]
        if m <= 6:
            self._symbology = m
            self._scan_start(_SCAN_BARCODE)
        elif 65 <= m <= 79:
            self._want(4, self._gs_k_b)
        else:
            self._fixed(3)       # out-of-range m: the bytes after it are ordinary data

    def _gs_k_b(self):
        n = self._hdr[3]
        self._collect(n, n, lambda: self._barcode(_BARCODE_B[self._hdr[2] - 65]))

    def _barcode(self, symbology):
        data = self._data
        text = _code128_text(data) if symbology.startswith("CODE128") or \
            symbology == "GS1-128" else _latin1(data)
        if self._selected:
            self._end_image()
            self._stats["barcodes"] += 1
            self._content = True
            self._emit((BARCODE, symbology, text))
        self._done()

    def _gs_paren(self):
        letter = self._hdr[2]
        length = self._u16(3)
        if length < 2 or letter not in (0x6B, 0x4C, 0x48, 0x45, 0x43, 0x47):
            self._skip(length)
            return
        self._paren_base = 5
        self._paren_len = length
        self._want(7, self._gs_paren_fn)

    def _gs_8(self):
        if self._hdr[2] != 0x4C:
            self._unknown()
            return
        self._want(7, self._gs_8_len)

    def _gs_8_len(self):
        h = self._hdr
        length = h[3] | (h[4] << 8) | (h[5] << 16) | (h[6] << 24)
        if self._too_big(length):
            self._desync()
            return
        if length < 2:
            self._skip(length)
            return
        self._paren_base = 7
        self._paren_len = length
        self._want(9, self._gs_paren_fn)

    def _gs_paren_fn(self):
        # hdr[base] and hdr[base+1] are the two bytes after the length: (m, fn) or (cn, fn)
        letter = self._hdr[2]
        base = self._paren_base
        rest = self._paren_len - 2
        a = self._hdr[base]
        fn = self._hdr[base + 1]
        if letter == 0x6B:
            if fn == 80:
                cap = self._max_code + 3
                self._collect(rest, cap, lambda: self._store_code(a))
            elif fn == 81:
                self._skip(rest, lambda: self._print_code(a))
            else:
                if fn == 82:
                    self._request("GS ( k 82")
                self._skip(rest)
        elif letter == 0x4C:
            if fn in (112, 113) and rest >= 8:
                self._want(base + 10, self._graphics)
            else:
                if fn in (48, 51, 52, 64, 80):
                    self._request("GS ( L %d" % fn)
                elif fn in (69, 85):
                    self._image("logo", 0, 0, 0)
                self._skip(rest)
        else:
            if (letter == 0x48 and fn in (48, 49)) or \
                    (letter == 0x45 and fn in (1, 4, 6, 12, 14, 16, 50, 52, 100)) or \
                    (letter == 0x43 and fn in (2, 3, 4, 5, 50, 51, 52, 53)) or letter == 0x47:
                self._request("GS ( %s %d" % (chr(letter), fn))
            self._skip(rest)

    def _graphics(self):
        b = self._paren_base + 2           # a bx by c xL xH yL yH
        x = self._u16(b + 4)
        y = self._u16(b + 6)
        self._image_payload("graphics", x, y, self._paren_len - 10)

    def _store_code(self, cn):
        if self._data_overflow:
            self._stats["truncated_codes"] += 1
        skip = _CODE2D_PREFIX.get(cn, 1)
        self._stored[cn] = bytes(self._data[skip:])
        self._done()

    def _print_code(self, cn):
        data = self._stored.get(cn)
        if data is not None and self._selected:
            self._end_image()
            self._stats["codes2d"] += 1
            self._content = True
            self._emit((CODE2D, _CODE2D.get(cn, "2D-%d" % cn), _code_text(data)))
        self._done()

    # ---- FS specials ------------------------------------------------------------------------

    def _fs_paren(self):
        letter = self._hdr[2]
        length = self._u16(3)
        if length >= 2 and letter in (0x43, 0x45, 0x4C, 0x65):
            self._want(7, self._fs_paren_fn)
        else:
            self._skip(length)

    def _fs_paren_fn(self):
        letter = self._hdr[2]
        fn = self._hdr[5]
        rest = self._u16(3) - 2
        if letter == 0x43:
            if fn in (48, 0) and rest >= 0:
                self._utf8 = self._hdr[6] in (2, 50)
                self._set_key()
        elif letter == 0x65 or (letter == 0x45 and fn == 61) or \
                (letter == 0x4C and fn in (34, 48)):
            self._request("FS ( %s %d" % (chr(letter), fn))
        self._skip(rest)

    def _fs_g(self):
        sub = self._hdr[2]
        if sub == 0x31:
            self._want(10, lambda: self._skip(self._u16(8)))
        elif sub == 0x32:
            self._want(10, lambda: self._dle_done("FS g 2"))
        else:
            self._fixed(3)

    def _fs_q(self):
        self._images_left = self._hdr[2]
        self._fs_q_next()

    def _fs_q_next(self):
        if not self._images_left:
            self._done()
            return
        self._images_left -= 1
        self._hlen = 3
        self._want(7, self._fs_q_image)

    def _fs_q_image(self):
        x = self._u16(3)
        y = self._u16(5)
        if x > 1023 or y > 288:
            self._desync()
            return
        self._skip(x * y * 8, self._fs_q_next)

    # ---- scans (NUL- or terminator-ended, capped) ---------------------------------------------

    def _scan_start(self, kind):
        self._scan_kind = kind
        self._data = bytearray()
        self._scan_fields = 0
        self._mode = _SCAN

    def _scan(self, buf, i, n):
        kind = self._scan_kind
        data = self._data
        while i < n:
            b = buf[i]
            if kind == _SCAN_BARCODE:
                m = self._symbology
                if b == 0 or len(data) >= _BARCODE_A_MAX[m]:
                    self._barcode(_BARCODE_A[m])
                    return i + 1 if b == 0 else i
                if b not in _BARCODE_A_ALPHABET[m]:
                    self._barcode(_BARCODE_A[m])
                    return i
                data.append(b)
            elif kind == _SCAN_TABS:
                if b == 0 or len(data) >= _MAX_TABS or (data and b <= data[-1]):
                    self._tabs = list(data)
                    self._done()
                    return i + 1 if b == 0 else i
                data.append(b)
            elif kind == _SCAN_UNTIL:
                if b == self._scan_end:
                    self._scan_then()
                    return i + 1
                if len(data) >= _MAX_SCAN:
                    self._desync()
                    return i
                data.append(b)
            else:
                if b == 0x3B:
                    self._scan_fields += 1
                    if self._scan_fields == 5:
                        self._done()
                        return i + 1
                elif not 0x30 <= b <= 0x39 or len(data) >= _MAX_SCAN:
                    self._done()
                    return i
                else:
                    data.append(b)
            i += 1
        return i

    def _scan_until(self, end, then):
        self._scan_start(_SCAN_UNTIL)
        self._scan_end = end
        self._scan_then = then

    # ---- Star Line Mode -----------------------------------------------------------------------

    def _star_esc(self, c):
        total = _STAR_ESC_FIX[c]
        if total:
            self._fixed(total)
        elif c == 0x1D:
            self._want(3, self._esc_gs)
        elif c == 0x1E:
            self._fixed(4)
        elif c == 0x62:
            self._want(6, lambda: self._scan_until(0x1E, self._star_barcode))
        elif c == 0x42 or c == 0x44:
            self._scan_until(0, self._done_b)
        elif c == 0x43:
            self._want(3, lambda: self._fixed(4 if self._hdr[2] == 0 else 3))
        elif c == 0x2A:
            self._want(4, self._star_esc_star)
        elif c == 0x58:
            self._want(4, lambda: self._image_payload("column", self._u16(2), 24,
                                                     3 * self._u16(2)))
        elif c == 0x4B or c == 0x6B:
            self._want(4, lambda: self._image_payload(
                "column", self._hdr[2], 8 if c == 0x4B else 24,
                self._hdr[2] * (1 if c == 0x4B else 3)))
        elif c == 0x4C:
            self._want(4, lambda: self._image_payload("column", self._u16(2), 8, self._u16(2)))
        else:
            self._unknown()

    def _star_exec(self, c):
        h = self._hdr
        if c == 0x40:
            self._init()
        elif c == 0x64:
            kind = _STAR_CUTS.get(h[2])
            if kind:
                self._do_cut(kind)
        elif c == 0x61 or c == 0x4A or c == 0x49:
            self._feed_lines()
        elif c == 0x52:
            self._intl = h[2]
            self._set_key()
        elif c == 0x07:
            pass
        elif c == 0x06:
            self._request("ESC ACK SOH")
        elif c == 0x0C and h[2] == 0x04:
            self._do_cut("full")

    def _star_barcode(self):
        n1 = self._hdr[2]
        kind = n1 - 0x30 if n1 >= 0x30 else n1
        name = _STAR_BARCODES[kind] if kind < len(_STAR_BARCODES) else "STAR-%d" % n1
        self._barcode(name)

    def _star_esc_star(self):
        # ESC * r A enters raster mode: we frame its commands as ESC * r x ... NUL and b/k lines
        if self._hdr[2] != 0x72:
            self._unknown()
            return
        letter = self._hdr[3]
        if letter in (0x41, 0x42):
            self._end_line()
            self._raster = letter == 0x41
            self._done()
        else:
            self._scan_until(0, self._done_b)

    def _raster_byte(self, b, i):
        """Star raster mode: b/k lines of raster data, ESC commands, nothing else prints."""
        if b == 0x62 or b == 0x6B:
            self._hdr[0] = b
            self._hlen = 1
            self._want(3, lambda: self._image_payload("star-raster", self._u16(1) * 8, 1,
                                                     self._u16(1)))
        elif b == _ESC:
            self._begin(b)
        return i + 1

    def _star_raster_image(self):
        x = self._u16(4)
        y = self._u16(6)
        self._image_payload("star-raster", x * 8, y, x * y)

    def _star_qr(self):
        sub = self._hdr[3]
        if sub == 0x44:
            self._want(8, lambda: self._collect(self._u16(6), self._max_code,
                                                lambda: self._star_store(49)))
        elif sub == 0x50:
            self._print_code(49)
        elif sub == 0x49:
            self._dle_done("ESC GS y I")
        else:
            self._fixed(6)

    def _star_pdf417(self):
        sub = self._hdr[3]
        if sub == 0x44:
            self._want(6, lambda: self._collect(self._u16(4), self._max_code,
                                                lambda: self._star_store(48)))
        elif sub == 0x50:
            self._print_code(48)
        elif sub == 0x49:
            self._dle_done("ESC GS x I")
        else:
            self._fixed(6)

    def _star_store(self, cn):
        self._stored[cn] = bytes(self._data)
        self._done()

    # ---- text lines, images, receipts -----------------------------------------------------------

    def _emit(self, event):
        if self._recording and len(self._macro) < _MAX_MACRO:
            self._macro.append(event)
        self._out.append(event)

    def _drawer(self, event):
        self._stats["drawer_kicks"] += 1
        self._emit((DRAWER,) + event)

    def _request(self, name):
        self._stats["requests"] += 1
        self._out.append((REQUEST, name))

    def _newline(self):
        if self._llen == 0 and self._pending_img is not None:
            return                 # the LF after an image stripe is not a blank text line
        self._end_line(True)

    def _feed_lines(self):
        if self._llen:
            self._end_line()

    def _end_line(self, blank_too=False):
        llen = self._llen
        if llen == 0:
            if blank_too and self._selected:
                self._line_event("", None)
            return
        runs = self._runs
        if len(runs) == 1:
            spans = ((runs[0][1][0], runs[0][1][1], bytes(self._line_mv[:llen])),)
        else:
            spans = []
            for k in range(len(runs)):
                start, key = runs[k]
                end = runs[k + 1][0] if k + 1 < len(runs) else llen
                if end > start:
                    spans.append((key[0], key[1], bytes(self._line_mv[start:end])))
            spans = tuple(spans)
        self._llen = 0
        self._runs = []
        self._run_key = None
        self._line_cut = False
        text = decode_line(spans)
        if text is None:
            self._line_event(None, spans)
        else:
            self._line_event(text, None)

    def _line_event(self, text, raw):
        if self._page_mode:
            if len(self._page) < _MAX_PAGE_LINES:
                self._page.append((text, raw))
            else:
                self._stats["page_lines_dropped"] += 1
            return
        self._stats["lines"] += 1
        if text or raw:
            self._end_image()
            self._content = True
            self._emit((LINE, text, raw))
        else:
            self._emit(_BLANK_LINE)

    def _print_page(self):
        self._end_line()
        page = self._page or []
        self._page_mode = False
        for text, raw in page:
            self._line_event(text, raw)
        self._page_mode = True
        self._page = []

    def _drop_page(self):
        self._end_line()
        if self._page:
            self._stats["page_lines_dropped"] += len(self._page)
        self._page = [] if self._page_mode else None

    def _image_payload(self, kind, width, height, size):
        if self._too_big(size):
            self._desync()
            return
        if self._keep_images:
            self._data = bytearray()
            self._data_cap = size
            self._data_overflow = False
        self._image_kind = (kind, width, height, size)
        self._skip(size, self._image_done)

    def _image_done(self):
        kind, width, height, size = self._image_kind
        self._image(kind, width, height, size, self._data)
        self._done()

    def _image(self, kind, width, height, size, payload=None):
        """An image printed; consecutive stripes of one picture become one IMAGE event."""
        self._stats["images"] += 1
        self._stats["image_bytes"] += size
        if not self._selected:
            return
        self._end_line()
        img = self._pending_img
        if img is not None and img[1] == kind and img[2] == width and kind != "logo":
            img[3] += height
            img[4] += size
            if payload is not None and img[5] is not None:
                img[5] += payload
            return
        self._end_image()
        self._pending_img = [IMAGE, kind, width, height, size,
                       bytes(payload) if payload is not None else None]

    def _end_image(self):
        img = self._pending_img
        if img is not None:
            self._pending_img = None
            self._content = True
            if img[5] is None:
                self._emit((IMAGE, img[1], img[2], img[3], img[4]))
            else:
                self._emit((IMAGE, img[1], img[2], img[3], img[4], img[5]))

    def _do_cut(self, kind):
        self._end_line()
        self._end_image()
        self._stats["cuts"] += 1
        self._out.append((CUT, kind))
        self._end_receipt("cut", kind)

    def _end_receipt(self, reason, cut=None, offset=None):
        self._end_line()
        self._end_image()
        if self._content:
            self._content = False
            self._stats["receipts"] += 1
            if offset is None:
                offset = self._cursor if reason in ("cut", "abort") else self._base
            self._out.append((RECEIPT_END, reason, cut, offset))

    def _replay_macro(self, times):
        events = self._macro
        for _ in range(min(times, 16)):
            for event in events:
                self._out.append(event)
