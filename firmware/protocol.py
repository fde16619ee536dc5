"""The delivery protocol between a tap and the server: records, batches, acks, telemetry, topics.

This module is the one definition of the wire format. The firmware builds and encodes with it;
the server (`tilltap`) checks payloads with protocol_check.py, which the board does not load.
It is pure logic (json, binascii, cardmask), so it runs unchanged under MicroPython and CPython.

Failure assumptions:
- Anything on the wire can be truncated, duplicated, reordered or replayed; a device can run old
  or buggy firmware; a device's clock can be unsynced or wrong. So every record names its version,
  device, spool seq and boot, and the server checks everything (validate_record) before storing.
- The board has little RAM: a record is encoded once, at capture time, and stored in the spool
  without its seq (the spool assigns the seq when it stores it). The uplink splices the seq in
  front of the stored bytes when it builds a batch (batch_parts) instead of decoding and
  re-encoding JSON.
- Delivery is at-least-once: the same (device, seq) can arrive many times. The server stores it
  once and acknowledges it every time.

Record (one receipt), a JSON object with exactly these keys (optional ones may be absent):
    v            VERSION
    device       device ID: machine.unique_id() as lowercase hex, or a configured name
    seq          spool seq (added by batch_parts, absent in the spool)
    boot         boot counter of the device when the receipt was captured
    captured_at  ms since 1970-01-01 UTC if time_synced, else ms of uptime in that boot
    time_synced  true when captured_at is wall-clock time (NTP synced)
    lines        [text or null]: null where the board could not decode the line
    raw_lines    [[line index, [[encoding, intl_set, base64 bytes], ...]], ...] for null lines
    barcodes     [[symbology, data], ...]
    codes2d      [[type, data], ...]
    images       [{"kind", "width", "height", "size"[, "data": base64]}]; data only when images
                 are uploaded for server-side OCR
    cut, end     how the receipt ended (escpos_parser RECEIPT_END reason and cut), or null
    drawer       true if the cash drawer was kicked
    status       optional (absent: complete): "complete", "not_printed" (the printer failed
                 before it took all of the receipt's bytes) or "incomplete"
    reason       optional: why a receipt is incomplete ("cut_in_payload", "capture_behind")
    raw          optional {"encoding": "deflate" | "identity", "size": n, "data": base64}: the
                 receipt's ESC/POS bytes (raw deflate, any window) for re-parsing on the server
    printer      optional (absent in records of older firmware): how the board parsed the receipt,
                 {"profile", "codepage_map", "encoding", "model", "split": {"idle_ms",
                 "on_init", "tear_lines"}} (printer_context; model and tear_lines absent in
                 records of older firmware), so that a re-parse of its raw bytes on the server
                 reads them as the board did, whatever the printer's settings are later
    fields       optional, upload mode "fields" only (lines, codes and images then empty, no
                 raw): what the board's extractor found (FIELD_KEYS): total, subtotal,
                 currency, receipt_no, datetime (ISO 8601, local), member_id as strings or
                 null (amounts as decimal strings), payments [{"type", "amount"}], items
                 [{"name", "qty", "unit_price", "amount"[, "name_raw"]}]: a name the board
                 could not decode is null, its bytes in name_raw [[encoding, intl_set,
                 base64], ...] for the server to decode (fields_mode.py)
Batch:  {"v": VERSION, "device": id, "records": [record, ...]}
Ack:    {"acked": [seq, ...], "rejected": [{"seq": seq or null, "error": reason}, ...]
         [, "retry_refused": n]}
        "acked" lists seqs the server has committed (new or already stored); a device deletes a
        spool record only when its seq is in "acked". A seq in "rejected" is refused for good:
        the device sets the record aside (kept, not resent). Anything else (no answer, an HTTP
        error without per-record entries) is retried. HTTP 413 means the batch was too large:
        the device halves it. "retry_refused" (also in the answer to telemetry: {"ok": true,
        "retry_refused": n} over HTTP, an ack message with no seqs over MQTT) is an operator's
        request to offer the set-aside records again; the device does so once per new n and
        reports the n it handled in its telemetry (uplink.retried), which ends the request.
Telemetry: {"v": VERSION, "device": id, ...fields of TELEMETRY_FIELDS}
"""
import json
from binascii import b2a_base64

VERSION = 1

# Limits, the same on both sides: the device never builds what the server would refuse.
MAX_RECORD_BYTES = 128 * 1024       # one encoded record, raw bytes and images included
MAX_BATCH_BYTES = 512 * 1024        # one HTTP body or MQTT payload
MAX_BATCH_RECORDS = 500
MAX_FUTURE_SKEW_MS = 5 * 60 * 1000  # a synced capture time further ahead than this is refused
MAX_DEVICE_ID = 64
MAX_SEQ = 0xFFFFFFFF                # the spool's seq is a u32
# Integers the server stores in columns: valid ranges on both databases, so that a record that
# passes validation can always be committed (PostgreSQL's INTEGER is 32-bit signed).
MAX_BOOT = 0x7FFFFFFF               # boot counter (receipts.boot, an INTEGER column)
MAX_CAPTURED_AT = (1 << 53) - 1     # ms (BIGINT column; exact in JSON and the dashboard's JS)
# The most bytes a record's raw ESC/POS bytes may inflate to (raw.size): what an identity
# record of MAX_RECORD_BYTES could carry. The server re-parses no more than this per receipt.
MAX_RAW_BYTES = MAX_RECORD_BYTES
MAX_TELEMETRY_BYTES = 8 * 1024
MAX_FIELD_TEXT = 200                # characters of a text field (an item's name, a receipt no.)

TOPIC_ROOT = "tilltap"
SHARE_GROUP = "tilltap-ingest"
HTTP_INGEST_PATH = "/api/v1/ingest"
HTTP_TELEMETRY_PATH = "/api/v1/telemetry"

_PART = 256   # bytes per part of record_parts(): small blocks fit a fragmented heap
_RAW_PIECE = 384   # raw bytes per base64 part: 512 characters, no padding inside the string

# MicroPython ports with a 2000 epoch (ESP32) return time.time() from 2000-01-01.
EPOCH_2000_OFFSET_S = 946684800

# The consumption data of upload mode "fields" (firmware/fields.py extract()).
FIELD_KEYS = ("total", "subtotal", "currency", "receipt_no", "datetime", "member_id", "payments",
              "items")
ITEM_KEYS = ("name", "qty", "unit_price", "amount")
TELEMETRY_FIELDS = ("v", "device", "boot", "uptime_ms", "mem_free", "spool", "dropped",
                    "dropped_by", "dropped_ranges", "last_ack_ms", "printer", "firmware",
                    "uplink")


def batch_size(batch_bytes):
    """Bytes of the buffer the board reads a batch into, for the setting upload.batch_bytes."""
    return min(batch_bytes, MAX_BATCH_BYTES // 2)


# -- topics

def receipts_topic(device):
    """MQTT topic a device publishes its receipt batches to."""
    return "%s/%s/receipts" % (TOPIC_ROOT, device)


def ack_topic(device):
    """MQTT topic the server publishes a device's acks to (the device subscribes)."""
    return "%s/%s/ack" % (TOPIC_ROOT, device)


def telemetry_topic(device):
    """MQTT topic a device publishes its health telemetry to."""
    return "%s/%s/telemetry" % (TOPIC_ROOT, device)


def device_id_from_uid(uid):
    """The device ID for machine.unique_id() bytes: lowercase hex."""
    return "".join("%02x" % b for b in uid)


# -- printer context

def printer_context(printer, split):
    """The record's "printer" object from the configuration's printer and split sections: the
    parser options the board runs with (parser_options() reads them back). split.tear_off is
    resolved here: tear_lines is the threshold in force, 0 when off ("auto": on when the
    printer model has no cutter)."""
    model = printer["model"] or None
    tear = split["tear_off"]
    if tear == "auto":
        if model is None:
            tear = "off"
        else:
            from .printer_models import cuts  # the models' tables only when a model is set
            tear = "off" if cuts(model) else "on"
    return {"profile": printer["profile"], "codepage_map": printer["codepage_map"],
            "encoding": printer["encoding"] or None, "model": model,
            "split": {"idle_ms": split["idle_ms"], "on_init": split["on_init"],
                      "tear_lines": split["tear_lines"] if tear == "on" else 0}}


def parser_options(printer):
    """escpos_parser.Parser keyword arguments for a printer context (None: the defaults, a
    record of firmware older than the context)."""
    if not printer:
        return {}
    return {"profile": printer["profile"], "codepage_map": printer["codepage_map"],
            "encoding": printer["encoding"], "split_on_init": printer["split"]["on_init"],
            "model": printer.get("model"), "tear_lines": printer["split"].get("tear_lines", 0)}


# -- building records (firmware side)

def b64(data):
    """Base64 text of bytes (or a memoryview of them), no newline."""
    return b2a_base64(data, newline=False).decode()


def want_raw(receipt, raw_size, raw_max, images):
    """Whether to attach a receipt's raw bytes: they fit raw_max, and carry no image unless
    images are uploaded (raster data is large and only useful to server-side OCR)."""
    return 0 < raw_size <= raw_max and (images or not receipt.images)


def record_from_receipt(receipt, device, boot, captured_at, time_synced, raw=None,
                        raw_deflated=None, images=False, seq=None, printer=None):
    """The record dict for a receipt.Receipt.

    raw: the receipt's ESC/POS bytes to attach, or None; raw_deflated: the same bytes raw-deflated
    where the caller could compress them (then sent instead). images: include image payloads
    (only present when the parser ran with keep_images). seq: normally None (see batch_parts).
    printer: the printer context (printer_context()) the receipt was parsed with.
    """
    rec = record_head(receipt, device, boot, captured_at, time_synced, printer)
    rec["lines"] = receipt.lines
    rec["barcodes"] = [[s, d] for s, d in receipt.barcodes]
    rec["codes2d"] = [[t, d] for t, d in receipt.codes2d]
    rec["images"] = [image_entry(i, images) for i in receipt.images]
    if receipt.raw_lines:
        rec["raw_lines"] = [[i, [[enc, intl, b64(data)] for enc, intl, data in spans]]
                            for i, spans in sorted(receipt.raw_lines.items())]
    if seq is not None:
        rec["seq"] = seq
    if raw is not None:
        if raw_deflated is not None:
            rec["raw"] = {"encoding": "deflate", "size": len(raw), "data": b64(raw_deflated)}
        else:
            rec["raw"] = {"encoding": "identity", "size": len(raw), "data": b64(raw)}
    return rec


def record_from_fields(receipt, fields, device, boot, captured_at, time_synced, printer=None):
    """The record of upload mode "fields": the consumption data the board extracted
    (fields.extract(), FIELD_KEYS) and how the receipt ended; no text, codes or raw bytes."""
    rec = record_head(receipt, device, boot, captured_at, time_synced, printer)
    rec["lines"] = []
    rec["barcodes"] = []
    rec["codes2d"] = []
    rec["images"] = []
    rec["fields"] = fields
    return rec


def record_head(receipt, device, boot, captured_at, time_synced, printer):
    """The members every record starts with (the receipt's end, cut and drawer included)."""
    rec = {"v": VERSION, "device": device, "boot": boot, "captured_at": captured_at,
           "time_synced": bool(time_synced), "cut": receipt.cut, "end": receipt.end,
           "drawer": bool(receipt.drawer), "status": receipt.status}
    if receipt.reason is not None:
        rec["reason"] = receipt.reason
    if printer is not None:
        rec["printer"] = printer
    return rec


def image_entry(img, with_data):
    """A record's image entry (data only when images are uploaded and the parser kept them)."""
    out = {"kind": img[0], "width": img[1], "height": img[2], "size": img[3]}
    if with_data and len(img) > 4 and img[4] is not None:
        out["data"] = b64(img[4])
    return out


def encode_record(rec):
    """The bytes stored in the spool for a record (UTF-8 JSON object, without seq)."""
    return json.dumps(rec).encode()


def record_parts(rec, raw=None, members=None):
    """The same JSON object as encode_record(rec), as a list of parts of about _PART bytes
    (Spool.append stores their concatenation). On the board a heap fragmented by a long
    receipt's many small objects has room for small pieces where a whole record may not fit.

    raw: the receipt's ESC/POS bytes (a memoryview will do), added as rec["raw"] would be by
    record_from_receipt(raw=...), their base64 written piece by piece: no value needs a
    block of its whole size. members: parts holding members written already
    (record.RecordBuilder), put first.
    """
    parts = [b"{"] + members + [bytearray()] if members else [bytearray(b"{")]
    comma = b"," if members else b""
    for key in rec:
        value = rec[key]
        parts[-1] += b'%s"%s":' % (comma, key.encode())
        comma = b","
        if isinstance(value, list):
            parts[-1] += b"["
            for i, item in enumerate(value):
                add_item(parts, i, json.dumps(item).encode())
            parts[-1] += b"]"
        else:
            parts[-1] += json.dumps(value).encode()
    if raw is not None:
        parts[-1] += b'%s"raw":{"encoding":"identity","size":%d,"data":"' % (comma, len(raw))
        parts.append(Base64Part(raw))
        parts.append(bytearray(b'"}'))
    parts[-1] += b"}"
    return parts


class Base64Part:
    """A record part: bytes as base64, made a piece at a time as it is read (pieces(), as
    spool.FilePart): a receipt's raw bytes reach flash without their base64 on the heap.
    data (a memoryview will do) must stay valid until the record is stored."""

    def __init__(self, data):
        self._data = data
        self.size = (len(data) + 2) // 3 * 4

    def __len__(self):
        return self.size

    def pieces(self, buf=None):
        """The base64 text in pieces of 512 characters (buf: unused, as FilePart's)."""
        data = self._data
        for pos in range(0, len(data), _RAW_PIECE):
            yield b2a_base64(data[pos:pos + _RAW_PIECE], newline=False)


def add_item(parts, index, item):
    """Appends JSON array item number index (a comma first unless it is the first) to the last
    part, or to a new one once that holds _PART bytes. All or nothing: after a MemoryError
    the parts hold the same JSON as before (an empty part more at most)."""
    part = parts[-1]
    if len(part) >= _PART:
        part = bytearray()
        parts.append(part)
    part += b"," + item if index else item


def batch_parts(device, entries):
    """One batch payload from spool entries [(seq, record parts)], seq spliced into each, as
    a list of parts: the records' parts themselves, never copied or joined.

    A stored record is a JSON object '{...}' without "seq"; it becomes '{"seq":N,...}'. No JSON
    is decoded on the board.
    """
    out = [b'{"v":%d,"device":"%s","records":[' % (VERSION, device.encode())]
    for i, (seq, body) in enumerate(entries):
        out.append(b'%s{"seq":%d,' % (b"," if i else b"", seq))
        out.append(memoryview(body[0])[1:])  # drop the body's own "{"
        out += body[1:]
    out.append(b"]}")
    return out


def joined(parts):
    """The parts as one bytearray (one allocation: where a body must be contiguous); a part
    with pieces() (spool.FilePart, Base64Part) is copied piece by piece."""
    size = 0
    for p in parts:
        size += len(p)
    out = bytearray(size)
    view = memoryview(out)
    buf = None
    pos = 0
    for p in parts:
        if hasattr(p, "pieces"):
            if buf is None:
                buf = bytearray(_PART)
            for piece in p.pieces(buf):
                view[pos:pos + len(piece)] = piece
                pos += len(piece)
        else:
            view[pos:pos + len(p)] = p
            pos += len(p)
    return out


def _int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def parse_answer(data, ack=False):
    """(acked seqs, refused seqs, retry_refused request or None) of a server answer: an ack,
    an HTTP error body listing rejected records, or an answer to telemetry (missing lists are
    empty); None if it is not a JSON object (or, with ack, one without an "acked" list)."""
    try:
        obj = json.loads(data)
    except (ValueError, TypeError):
        return None
    if not isinstance(obj, dict):
        return None
    acked = obj.get("acked")
    if ack and not isinstance(acked, list):
        return None
    acked = [s for s in acked if _int(s)] if isinstance(acked, list) else []
    rejected = obj.get("rejected")
    refused = [e["seq"] for e in rejected if isinstance(e, dict) and _int(e.get("seq"))] \
        if isinstance(rejected, list) else []
    retry = obj.get("retry_refused")
    return acked, refused, retry if _int(retry) else None


def parse_ack(data):
    """parse_answer() of an ack (it must list "acked"); None if it is not one."""
    return parse_answer(data, ack=True)


def telemetry(device, boot, uptime_ms, mem_free, spool_stats, last_ack_ms, printer, firmware,
              uplink):
    """Telemetry payload bytes from the device's counters (spool_stats: Spool.stats())."""
    s = spool_stats
    return json.dumps({
        "v": VERSION, "device": device, "boot": boot, "uptime_ms": uptime_ms,
        "mem_free": mem_free,
        "spool": {"count": s.get("count"), "bytes": s.get("bytes"), "oldest": s.get("oldest"),
                  "newest": s.get("newest"), "free": s.get("free"),
                  "refused": s.get("refused", 0)},
        "dropped": s.get("dropped", 0), "dropped_by": s.get("dropped_by", {}),
        "dropped_ranges": [[a, b] for a, b in s.get("dropped_ranges", ())],
        "last_ack_ms": last_ack_ms, "printer": printer, "firmware": firmware, "uplink": uplink,
    }).encode()
