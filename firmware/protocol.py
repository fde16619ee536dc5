"""The delivery protocol between a tap and the server: records, batches, acks, telemetry, topics.

This module is the one definition of the wire format. The firmware builds and encodes with it;
the server (`tilltap`) validates with it. It is pure logic (json, binascii), so it runs unchanged
under MicroPython and CPython.

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
Batch:  {"v": VERSION, "device": id, "records": [record, ...]}
Ack:    {"acked": [seq, ...], "rejected": [{"seq": seq or null, "error": reason}, ...]}
        "acked" lists seqs the server has committed (new or already stored); a device deletes a
        spool record only when its seq is in "acked". Rejected records are kept on the device.
Telemetry: {"v": VERSION, "device": id, ...fields of TELEMETRY_FIELDS}
"""
import json
from binascii import a2b_base64, b2a_base64

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

# MicroPython ports with a 2000 epoch (ESP32) return time.time() from 2000-01-01.
EPOCH_2000_OFFSET_S = 946684800

_RECORD_KEYS = ("v", "device", "seq", "boot", "captured_at", "time_synced", "lines",
                "raw_lines", "barcodes", "codes2d", "images", "cut", "end", "drawer", "raw")
_OPTIONAL_KEYS = ("seq", "raw", "raw_lines")
_IMAGE_KEYS = ("kind", "width", "height", "size", "data")
_RAW_ENCODINGS = ("deflate", "identity")
TELEMETRY_FIELDS = ("v", "device", "boot", "uptime_ms", "mem_free", "spool", "dropped",
                    "dropped_by", "dropped_ranges", "last_ack_ms", "printer", "firmware",
                    "uplink")


class ProtocolError(ValueError):
    """A payload that does not follow this protocol; str(e) is the reason given back."""


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


def shared_filter(kind, group=SHARE_GROUP):
    """Shared-subscription filter for the server: every device's `kind` topic, load-shared."""
    return "$share/%s/%s/+/%s" % (group, TOPIC_ROOT, kind)


def device_from_topic(topic):
    """(device, kind) of a device topic, or (None, None) if the topic is not one of ours."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != TOPIC_ROOT or not valid_device_id(parts[1]):
        return None, None
    return parts[1], parts[2]


def valid_device_id(device):
    """True for 1..64 chars of [0-9a-z_-]: safe in topics, file names and URLs."""
    if not isinstance(device, str) or not 0 < len(device) <= MAX_DEVICE_ID:
        return False
    for c in device:
        if not ("0" <= c <= "9" or "a" <= c <= "z" or c == "_" or c == "-"):
            return False
    return True


def device_id_from_uid(uid):
    """The device ID for machine.unique_id() bytes: lowercase hex."""
    return "".join("%02x" % b for b in uid)


# -- building records (firmware side)

def b64(data):
    """Base64 text of bytes, no newline (MicroPython's b2a_base64 always adds one)."""
    return b2a_base64(data).decode().rstrip("\n")


def unb64(text):
    """Bytes of base64 text; raises ProtocolError on bad base64."""
    try:
        return a2b_base64(text)
    except (ValueError, TypeError):
        raise ProtocolError("bad base64")


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
    rec = {
        "v": VERSION, "device": device, "boot": boot, "captured_at": captured_at,
        "time_synced": bool(time_synced), "lines": receipt.lines,
        "barcodes": [[s, d] for s, d in receipt.barcodes],
        "codes2d": [[t, d] for t, d in receipt.codes2d],
        "images": [_image(i, images) for i in receipt.images],
        "cut": receipt.cut, "end": receipt.end, "drawer": bool(receipt.drawer),
    }
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


def _image(img, with_data):
    out = {"kind": img[0], "width": img[1], "height": img[2], "size": img[3]}
    if with_data and len(img) > 4 and img[4] is not None:
        out["data"] = b64(img[4])
    return out


def encode_record(rec):
    """The bytes stored in the spool for a record (UTF-8 JSON object, without seq)."""
    return json.dumps(rec).encode()


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
    acked = [s for s in obj["acked"] if _is_int(s)]
    rejected = obj.get("rejected")
    return acked, len(rejected) if isinstance(rejected, list) else 0


def encode_ack(acked, rejected=()):
    """Ack payload bytes: acked seqs, and [(seq or None, reason)] refused."""
    obj = {"acked": list(acked)}
    if rejected:
        obj["rejected"] = [{"seq": s, "error": e} for s, e in rejected]
    return json.dumps(obj).encode()


# -- validation (server side; pure so that the device's tests can check what they build)

def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _is_str(x):
    return isinstance(x, str)


def _envelope(data, what, limit):
    """The JSON object of a batch or telemetry payload: size, JSON, version, device checked."""
    if len(data) > limit:
        raise ProtocolError("%s larger than %d bytes" % (what, limit))
    try:
        obj = json.loads(data)
    except (ValueError, TypeError, UnicodeError):
        raise ProtocolError("not JSON")
    if not isinstance(obj, dict):
        raise ProtocolError("%s must be a JSON object" % what)
    if obj.get("v") != VERSION:
        raise ProtocolError("unknown version %r (this server speaks %d)" % (obj.get("v"), VERSION))
    if not valid_device_id(obj.get("device")):
        raise ProtocolError("bad device")
    return obj


def parse_batch(data, device=None):
    """The batch dict of a payload, envelope checked (not the records); raises ProtocolError.

    device: the authenticated device; the batch must name the same one.
    """
    obj = _envelope(data, "batch", MAX_BATCH_BYTES)
    if device is not None and obj["device"] != device:
        raise ProtocolError("batch device does not match the credential or topic")
    records = obj.get("records")
    if not isinstance(records, list):
        raise ProtocolError("records must be a list")
    if len(records) > MAX_BATCH_RECORDS:
        raise ProtocolError("more than %d records" % MAX_BATCH_RECORDS)
    return obj


def validate_record(rec, device=None, now_ms=None):
    """None if rec is a valid record, else the reason it is not.

    device: the record must belong to this device. now_ms: wall clock (Unix ms) to refuse
    synced capture times more than MAX_FUTURE_SKEW_MS ahead.
    """
    if not isinstance(rec, dict):
        return "record must be a JSON object"
    for key in rec:
        if key not in _RECORD_KEYS:
            return "unknown field %r" % key
    for key in _RECORD_KEYS:
        if key not in rec and key not in _OPTIONAL_KEYS:
            return "missing field %r" % key
    if rec["v"] != VERSION:
        return "unknown version %r" % (rec["v"],)
    if not valid_device_id(rec["device"]):
        return "bad device"
    if device is not None and rec["device"] != device:
        return "record of another device"
    if "seq" not in rec:
        return "missing field 'seq'"
    if not _is_int(rec["seq"]) or not 0 <= rec["seq"] <= MAX_SEQ:
        return "seq must be an integer 0..%d" % MAX_SEQ
    if not _is_int(rec["boot"]) or rec["boot"] < 0:
        return "boot must be a non-negative integer"
    if not _is_int(rec["captured_at"]) or rec["captured_at"] < 0:
        return "captured_at must be a non-negative integer"
    if not isinstance(rec["time_synced"], bool) or not isinstance(rec["drawer"], bool):
        return "time_synced and drawer must be booleans"
    if rec["time_synced"] and now_ms is not None and \
            rec["captured_at"] > now_ms + MAX_FUTURE_SKEW_MS:
        return "captured_at is in the future"
    lines = rec["lines"]
    if not isinstance(lines, list) or any(not (x is None or _is_str(x)) for x in lines):
        return "lines must be a list of strings or nulls"
    for key in ("barcodes", "codes2d"):
        items = rec[key]
        if not isinstance(items, list) or any(
                not isinstance(p, list) or len(p) != 2 or not _is_str(p[0]) or not _is_str(p[1])
                for p in items):
            return "%s must be a list of [string, string]" % key
    for key in ("cut", "end"):
        if not (rec[key] is None or _is_str(rec[key])):
            return "%s must be a string or null" % key
    return _check_images(rec["images"]) or _check_raw_lines(rec.get("raw_lines"), lines) or \
        _check_raw(rec.get("raw"))


def _check_images(images):
    if not isinstance(images, list):
        return "images must be a list"
    for img in images:
        if not isinstance(img, dict) or any(k not in _IMAGE_KEYS for k in img) or \
                not _is_str(img.get("kind")) or \
                any(not _is_int(img.get(k)) or img[k] < 0 for k in ("width", "height", "size")) \
                or ("data" in img and not _is_str(img["data"])):
            return "images must be {kind, width, height, size[, data]}"
    return None


def _check_raw_lines(raw_lines, lines):
    if raw_lines is None:
        return None
    if not isinstance(raw_lines, list):
        return "raw_lines must be a list"
    for entry in raw_lines:
        if not isinstance(entry, list) or len(entry) != 2 or not _is_int(entry[0]) or \
                not 0 <= entry[0] < len(lines) or not isinstance(entry[1], list):
            return "raw_lines entries must be [line index, spans]"
        for span in entry[1]:
            if not isinstance(span, list) or len(span) != 3 or not _is_str(span[0]) or \
                    not _is_int(span[1]) or not _is_str(span[2]):
                return "raw_lines spans must be [encoding, intl_set, base64]"
    return None


def _check_raw(raw):
    if raw is None:
        return None
    if not isinstance(raw, dict) or sorted(raw) != ["data", "encoding", "size"] or \
            raw["encoding"] not in _RAW_ENCODINGS or not _is_int(raw["size"]) or \
            raw["size"] < 0 or not _is_str(raw["data"]):
        return "raw must be {encoding: deflate|identity, size, data}"
    return None


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


def parse_telemetry(data, device=None):
    """The telemetry dict of a payload; raises ProtocolError with the reason."""
    obj = _envelope(data, "telemetry", MAX_TELEMETRY_BYTES)
    for key in obj:
        if key not in TELEMETRY_FIELDS:
            raise ProtocolError("unknown field %r" % key)
    if device is not None and obj["device"] != device:
        raise ProtocolError("bad device")
    ranges = obj.get("dropped_ranges", [])
    if not isinstance(ranges, list) or any(
            not isinstance(r, list) or len(r) != 2 or not _is_int(r[0]) or not _is_int(r[1])
            for r in ranges):
        raise ProtocolError("dropped_ranges must be [[first, last], ...]")
    return obj
