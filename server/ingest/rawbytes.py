"""A receipt's raw ESC/POS bytes: checked at ingest, inflated for a re-parse (OCR).

A record may carry its ESC/POS bytes (protocol.py "raw": identity or raw deflate, with the
plain size). Stored as sent (receipts.raw, raw_encoding); whatever reads them back inflates no
more than protocol.MAX_RAW_BYTES, which bounds the memory and time of a server-side re-parse
along with the parser's own macro budget (escpos_parser).
"""
import zlib

from tilltap_fw import protocol, protocol_check


def raw_bytes(raw: bytes, encoding: str | None, limit: int = protocol.MAX_RAW_BYTES) -> bytes:
    """The plain ESC/POS bytes of stored raw bytes (raw_encoding "deflate" or "identity");
    raises ValueError on a bad or truncated deflate stream, or one inflating past limit."""
    if encoding != "deflate":
        return bytes(raw)
    inflater = zlib.decompressobj(-15)
    try:
        data = inflater.decompress(raw, limit)
    except zlib.error as e:
        raise ValueError("raw bytes: %s" % e) from None
    if inflater.unconsumed_tail or (len(data) == limit and inflater.decompress(b"", 1)):
        raise ValueError("raw bytes inflate to more than %d bytes" % limit)
    if not inflater.eof:
        raise ValueError("raw bytes: truncated deflate stream")
    return data


def checked_raw(member: dict) -> tuple[str, bytes]:
    """(encoding, bytes to store) of a validated record's "raw" member; raises
    protocol_check.ProtocolError when its data is not strict base64 or does not hold exactly
    raw.size bytes (inflated, for deflate)."""
    try:
        data = protocol_check.unb64(member["data"])
    except protocol_check.ProtocolError as e:
        raise protocol_check.ProtocolError("raw.data: %s" % e) from None
    size = member["size"]
    try:
        plain = raw_bytes(data, member["encoding"], size)
    except ValueError as e:
        raise protocol_check.ProtocolError("raw: %s (raw.size %d)" % (e, size)) from None
    if len(plain) != size:
        raise protocol_check.ProtocolError("raw: %d bytes, raw.size says %d" % (len(plain), size))
    return member["encoding"], data
