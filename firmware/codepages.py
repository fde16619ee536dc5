"""Single-byte code pages read from codec_tables.py's TABLE: on the board (upload mode fields,
no codecs there) and on the server for the pages Python has no codec for (katakana, TCVN-3,
...). One lookup for both, so both read a byte the same way."""
from . import codec_tables

UNDEFINED = 0xFFFF     # TABLE's mark for a byte the page leaves undefined


def page_base(name):
    """Where the page's bytes 0x80-0xFF start in TABLE, less 256 (so byte b is at base + 2*b),
    or None when TABLE has no such page. Looked up in the names string itself: no list of
    names on the board's heap."""
    at = (" " + codec_tables.PAGES + " ").find(" %s " % name)
    if at < 0:
        return None
    return codec_tables.PAGES.count(" ", 0, at) * 256 - 256


def code_point(base, byte):
    """The character a byte stands for on the page at base (page_base); UNDEFINED if none."""
    if byte < 0x80:
        return byte
    return codec_tables.TABLE[base + 2 * byte] << 8 | codec_tables.TABLE[base + 2 * byte + 1]


def table_text(raw, name, errors="backslashreplace"):
    """The bytes as text on the page named, None when TABLE has no such page. Undefined bytes
    read as \\xNN; errors="strict" raises UnicodeError instead (as Python's codecs do)."""
    base = page_base(name)
    if base is None:
        return None
    out = []
    for byte in raw:
        code = code_point(base, byte)
        if code != UNDEFINED:
            out.append(chr(code))
        elif errors == "strict":
            raise UnicodeError("byte 0x%02x is not in %s" % (byte, name))
        else:
            out.append("\\x%02x" % byte)
    return "".join(out)
