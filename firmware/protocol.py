"""The delivery protocol between a tap and the server: records, batches, acks, telemetry, topics.

This module is the one definition of the wire format. The firmware builds and encodes with it;
the server (`tilltap`) checks payloads with protocol_check.py, which the board does not load.
It is pure logic (json, binascii), so it runs unchanged under MicroPython and CPython.

Failure assumptions:
- Anything on the wire can be truncated, duplicated, reordered or replayed; a device can run old
  or buggy firmware; a device's clock can be unsynced or wrong. So every record names its version,
  device, spool seq and boot, and the server checks everything (validate_record) before storing.
- The board has little RAM: a record is encoded once, at capture time, and stored in the spool
  without its seq (the spool assigns the seq when it stores it). The uplink splices the seq in
  front of the stored bytes when it builds a batch (batch_bytes) instead of decoding and
  re-encoding JSON.
- Delivery is at-least-once: the same (device, seq) can arrive many times. The server stores it
  once and acknowledges it every time.

Record (one receipt), a JSON object with exactly these keys (optional ones may be absent):
    v            VERSION
    device       device ID: machine.unique_id() as lowercase hex, or a configured name
    seq          spool seq (added by batch_bytes, absent in the spool)
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
    raw          optional {"encoding": "deflate" | "identity", "size": n, "data": base64}: the
                 receipt's ESC/POS bytes (raw deflate, any window) for re-parsing on the server
    fields       optional, upload mode "fields" only (lines, codes and images then empty, no
                 raw): what the board's extractor found (FIELD_KEYS): total, subtotal,
                 currency, receipt_no, datetime (ISO 8601, local), member_id as strings or
                 null (amounts as decimal strings), payments [{"type", "amount"}], items
                 [{"name", "qty", "unit_price", "amount"}]
Batch:  {"v": VERSION, "device": id, "records": [record, ...]}
Ack:    {"acked": [seq, ...], "rejected": [{"seq": seq or null, "error": reason}, ...]}
        "acked" lists seqs the server has committed (new or already stored); a device deletes a
        spool record only when its seq is in "acked". Rejected records are kept on the device.
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
MAX_TELEMETRY_BYTES = 8 * 1024

TOPIC_ROOT = "tilltap"
SHARE_GROUP = "tilltap-ingest"
HTTP_INGEST_PATH = "/api/v1/ingest"
HTTP_TELEMETRY_PATH = "/api/v1/telemetry"

_PART = 512   # bytes per part of record_parts()

# MicroPython ports with a 2000 epoch (ESP32) return time.time() from 2000-01-01.
EPOCH_2000_OFFSET_S = 946684800

# The consumption data of upload mode "fields" (firmware/fields.py extract()).
FIELD_KEYS = ("total", "subtotal", "currency", "receipt_no", "datetime", "member_id", "payments",
              "items")
ITEM_KEYS = ("name", "qty", "unit_price", "amount")
TELEMETRY_FIELDS = ("v", "device", "boot", "uptime_ms", "mem_free", "spool", "dropped",
                    "dropped_by", "dropped_ranges", "last_ack_ms", "printer", "firmware",
                    "uplink")


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


# -- building records (firmware side)

def b64(data):
    """Base64 text of bytes (or a memoryview of them), no newline."""
    return b2a_base64(data, newline=False).decode()


def want_raw(receipt, raw_size, raw_max, images):
    """Whether to attach a receipt's raw bytes: they fit raw_max, and carry no image unless
    images are uploaded (raster data is large and only useful to server-side OCR)."""
    return 0 < raw_size <= raw_max and (images or not receipt.images)


def record_from_receipt(receipt, device, boot, captured_at, time_synced, raw=None,
                        raw_deflated=None, images=False, seq=None):
    """The record dict for a receipt.Receipt.

    raw: the receipt's ESC/POS bytes to attach, or None; raw_deflated: the same bytes raw-deflated
    where the caller could compress them (then sent instead). images: include image payloads
    (only present when the parser ran with keep_images). seq: normally None (see batch_bytes).
    """
    rec = _record_head(receipt, device, boot, captured_at, time_synced)
    rec["lines"] = receipt.lines
    rec["barcodes"] = [[s, d] for s, d in receipt.barcodes]
    rec["codes2d"] = [[t, d] for t, d in receipt.codes2d]
    rec["images"] = [_image(i, images) for i in receipt.images]
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


def record_from_fields(receipt, fields, device, boot, captured_at, time_synced):
    """The record of upload mode "fields": the consumption data the board extracted
    (fields.extract(), FIELD_KEYS) and how the receipt ended; no text, codes or raw bytes."""
    rec = _record_head(receipt, device, boot, captured_at, time_synced)
    rec["lines"] = []
    rec["barcodes"] = []
    rec["codes2d"] = []
    rec["images"] = []
    rec["fields"] = fields
    return rec


def _record_head(receipt, device, boot, captured_at, time_synced):
    return {"v": VERSION, "device": device, "boot": boot, "captured_at": captured_at,
            "time_synced": bool(time_synced), "cut": receipt.cut, "end": receipt.end,
            "drawer": bool(receipt.drawer)}


def _image(img, with_data):
    out = {"kind": img[0], "width": img[1], "height": img[2], "size": img[3]}
    if with_data and len(img) > 4 and img[4] is not None:
        out["data"] = b64(img[4])
    return out


def encode_record(rec):
    """The bytes stored in the spool for a record (UTF-8 JSON object, without seq)."""
    return json.dumps(rec).encode()


def record_parts(rec):
    """The same JSON object as encode_record(rec), as a list of parts of about _PART bytes
    (Spool.append stores their concatenation). On the board a heap fragmented by a long
    receipt's many small objects has room for small pieces where a whole record may not fit;
    only a single large value (the raw bytes' base64) still needs one block of its size."""
    parts = []
    part = bytearray(b"{")
    comma = b""
    for key in rec:
        value = rec[key]
        part += b'%s"%s":' % (comma, key.encode())
        comma = b","
        if isinstance(value, list):
            part += b"["
            for i, item in enumerate(value):
                if i:
                    part += b","
                part += json.dumps(item).encode()
                if len(part) >= _PART:
                    parts.append(part)
                    part = bytearray()
            part += b"]"
        else:
            part += json.dumps(value).encode()
    part += b"}"
    parts.append(part)
    return parts


def batch_bytes(device, entries):
    """One batch payload from spool entries [(seq, record bytes)], seq spliced into each.

    A stored record is a JSON object '{...}' without "seq"; it becomes '{"seq":N,...}'. No JSON
    is decoded on the board, and the only copy made is the payload itself.
    """
    head = b'{"v":%d,"device":"%s","records":[' % (VERSION, device.encode())
    prefixes = [b'%s{"seq":%d,' % (b"," if i else b"", seq) for i, (seq, _) in
                enumerate(entries)]
    size = len(head) + 2 + sum(len(p) + len(b) - 1 for p, (_, b) in zip(prefixes, entries))
    out = bytearray(size)  # one allocation: the payload itself
    view = memoryview(out)
    pos = len(head)
    view[:pos] = head
    for prefix, (_, body) in zip(prefixes, entries):
        view[pos:pos + len(prefix)] = prefix
        pos += len(prefix)
        view[pos:pos + len(body) - 1] = memoryview(body)[1:]  # drop the body's own "{"
        pos += len(body) - 1
    view[pos:] = b"]}"
    return out


def parse_ack(data):
    """(acked seqs, number rejected) from an ack payload; None if it is not a valid ack."""
    try:
        obj = json.loads(data)
    except (ValueError, TypeError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("acked"), list):
        return None
    acked = [s for s in obj["acked"] if isinstance(s, int) and not isinstance(s, bool)]
    rejected = obj.get("rejected")
    return acked, len(rejected) if isinstance(rejected, list) else 0


def telemetry(device, boot, uptime_ms, mem_free, spool_stats, last_ack_ms, printer, firmware,
              uplink):
    """Telemetry payload bytes from the device's counters (spool_stats: Spool.stats())."""
    s = spool_stats
    return json.dumps({
        "v": VERSION, "device": device, "boot": boot, "uptime_ms": uptime_ms,
        "mem_free": mem_free,
        "spool": {"count": s.get("count"), "bytes": s.get("bytes"), "oldest": s.get("oldest"),
                  "newest": s.get("newest"), "free": s.get("free")},
        "dropped": s.get("dropped", 0), "dropped_by": s.get("dropped_by", {}),
        "dropped_ranges": [[a, b] for a, b in s.get("dropped_ranges", ())],
        "last_ack_ms": last_ack_ms, "printer": printer, "firmware": firmware, "uplink": uplink,
    }).encode()
