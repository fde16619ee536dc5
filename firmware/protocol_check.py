"""What the server checks in every payload of the delivery protocol (protocol.py).

The board never imports this module (its code would take heap the receipts need); it stays
with the wire format, pure and MicroPython-compatible, so that the firmware's tests can check
what the board builds against exactly what the server accepts.
"""
import json
from binascii import a2b_base64, b2a_base64

from . import model_tables
from .escpos_parser import _EPSON_PAGES, _VENDOR_PAGES, ENCODINGS, PROFILES, VENDORS
from .printer_models import UNKNOWN_PAGE
from .printer_models import find as find_model
from .protocol import (
    FIELD_KEYS,
    ITEM_KEYS,
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    MAX_BOOT,
    MAX_CAPTURED_AT,
    MAX_DEVICE_ID,
    MAX_FIELD_TEXT,
    MAX_FUTURE_SKEW_MS,
    MAX_RAW_BYTES,
    MAX_SEQ,
    MAX_TELEMETRY_BYTES,
    SHARE_GROUP,
    TELEMETRY_FIELDS,
    TOPIC_ROOT,
    VERSION,
)
from .receipt import COMPLETE, STATUSES

_RECORD_KEYS = ("v", "device", "seq", "boot", "captured_at", "time_synced", "lines",
                "raw_lines", "barcodes", "codes2d", "images", "cut", "end", "drawer", "raw",
                "fields", "printer", "status", "reason")
_OPTIONAL_KEYS = ("seq", "raw", "raw_lines", "fields", "printer", "status", "reason")
_PRINTER_KEYS = ("profile", "codepage_map", "encoding", "split")
_PRINTER_OPTIONAL = ("model",)            # absent in records of older firmware
_SPLIT_KEYS = ("idle_ms", "on_init")
_SPLIT_OPTIONAL = ("tear_lines",)
_IMAGE_KEYS = ("kind", "width", "height", "size", "data")
_RAW_ENCODINGS = ("deflate", "identity")


class ProtocolError(ValueError):
    """A payload that does not follow this protocol; str(e) is the reason given back."""


def is_span_encoding(name):
    """True for an encoding name this parser can put in an undecoded line's span (the server
    refuses any other: a codec named by a device must be a text codec of ours)."""
    if name in ENCODINGS or name in ("utf-8", "jis", "shift_jis_2004", "cp437"):
        return bool(name)
    key = ":%s " % name
    return any(key in spec + " " for spec in list(_VENDOR_PAGES.values()) + [_EPSON_PAGES]) or \
        (name != UNKNOWN_PAGE and any(key in table for table in model_tables.TABLES))


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


def unb64(text):
    """Bytes of base64 text; raises ProtocolError on bad base64.

    Strict: the text must be exactly what b2a_base64 writes for its bytes (the board's
    encoder), since a2b_base64 skips characters outside the alphabet and would read garbage
    as a few bytes or none (MicroPython's has no strict mode, so the check re-encodes).
    """
    try:
        data = a2b_base64(text)
        canonical = b2a_base64(data, newline=False) == text.encode()
    except (ValueError, TypeError):
        canonical = False
    if not canonical:
        raise ProtocolError("bad base64")
    return data


def encode_ack(acked, rejected=(), retry_refused=None):
    """Ack payload bytes: acked seqs, [(seq or None, reason)] refused, and an operator's
    retry_refused request (protocol.py, Ack)."""
    obj = {"acked": list(acked)}  # type: dict
    if rejected:
        obj["rejected"] = [{"seq": s, "error": e} for s, e in rejected]
    if retry_refused is not None:
        obj["retry_refused"] = retry_refused
    return json.dumps(obj).encode()


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
    except RuntimeError:    # RecursionError on CPython: arrays or objects nested too deep
        raise ProtocolError("not JSON: nested too deep")
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


def validate_record(rec, device=None, now_ms=None):  # noqa: PLR0911 -- one return per reason
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
    if not _is_int(rec["boot"]) or not 0 <= rec["boot"] <= MAX_BOOT:
        return "boot must be an integer 0..%d" % MAX_BOOT
    if not _is_int(rec["captured_at"]) or not 0 <= rec["captured_at"] <= MAX_CAPTURED_AT:
        return "captured_at must be an integer 0..%d" % MAX_CAPTURED_AT
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
    if rec.get("status", COMPLETE) not in STATUSES or not _is_text(rec.get("reason")):
        return "status must be one of %s, reason a short string" % ", ".join(STATUSES)
    return _check_images(rec["images"]) or _check_raw_lines(rec.get("raw_lines"), lines) or \
        _check_raw(rec.get("raw")) or _check_fields(rec.get("fields")) or \
        _check_printer(rec.get("printer"))


def _has_keys(obj, keys, optional):
    return isinstance(obj, dict) and all(k in obj for k in keys) and \
        all(k in keys or k in optional for k in obj)


def _check_printer(printer):
    if printer is None:
        return None
    if not _has_keys(printer, _PRINTER_KEYS, _PRINTER_OPTIONAL) or \
            printer["profile"] not in PROFILES or printer["codepage_map"] not in VENDORS or \
            printer["encoding"] not in ENCODINGS or not _known_model(printer.get("model")):
        return ("printer must be {profile, codepage_map, encoding, split[, model]} with known "
                "values")
    split = printer["split"]
    if not _has_keys(split, _SPLIT_KEYS, _SPLIT_OPTIONAL) or \
            not _is_int(split["idle_ms"]) or not isinstance(split["on_init"], bool) or \
            not (_is_int(split.get("tear_lines", 0)) and 0 <= split.get("tear_lines", 0) <= 255):
        return "printer.split must be {idle_ms, on_init[, tear_lines]}"
    return None


def _known_model(model):
    return model is None or (_is_str(model) and find_model(model) is not None)


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
        reason = _check_spans(entry[1])
        if reason:
            return "raw_lines: " + reason
    return None


def _check_raw(raw):
    if raw is None:
        return None
    if not isinstance(raw, dict) or sorted(raw) != ["data", "encoding", "size"] or \
            raw["encoding"] not in _RAW_ENCODINGS or not _is_int(raw["size"]) or \
            not 0 <= raw["size"] <= MAX_RAW_BYTES or not _is_str(raw["data"]):
        return "raw must be {encoding: deflate|identity, size 0..%d, data}" % MAX_RAW_BYTES
    return None


_DATETIME_SHAPE = "dddd-dd-ddTdd:dd:dd"   # ISO 8601, local time, no offset; date alone too


def _is_amount(s):
    """A decimal string as fields.py writes it: -?D{1,15}(.D{1,6})? (no exponent, no NaN)."""
    if not _is_str(s):
        return False
    body = s[1:] if s[:1] == "-" else s
    whole, dot, frac = body.partition(".")
    return 0 < len(whole) <= 15 and whole.isdigit() and (
        not dot or (0 < len(frac) <= 6 and frac.isdigit()))


def _is_datetime(s):
    if not _is_str(s) or len(s) not in (10, 16, 19):
        return False
    for c, want in zip(s, _DATETIME_SHAPE):
        if not (c.isdigit() if want == "d" else c == want):
            return False
    return True


def _is_text(s):
    # longer strings are refused (the board cuts its own to fit); the server cuts to its columns
    return s is None or (_is_str(s) and len(s) <= MAX_FIELD_TEXT)


def _check_fields(fields):
    if fields is None:
        return None
    if not isinstance(fields, dict) or sorted(fields) != sorted(FIELD_KEYS):
        return "fields must have exactly the keys %s" % ", ".join(FIELD_KEYS)
    for key in ("total", "subtotal"):
        if not (fields[key] is None or _is_amount(fields[key])):
            return "fields.%s must be a decimal string or null" % key
    if not (fields["datetime"] is None or _is_datetime(fields["datetime"])):
        return "fields.datetime must be YYYY-MM-DD[THH:MM[:SS]] or null"
    if not all(_is_text(fields[k]) for k in ("currency", "receipt_no", "member_id")):
        return "fields.currency, receipt_no and member_id must be short strings or null"
    payments = fields["payments"]
    if not isinstance(payments, list) or any(
            not isinstance(p, dict) or sorted(p) != ["amount", "type"]
            or not _is_str(p["type"]) or not _is_text(p["type"]) or not _is_amount(p["amount"])
            for p in payments):
        return "fields.payments must be [{type, amount}]"
    items = fields["items"]
    if not isinstance(items, list) or any(
            not isinstance(i, dict) or sorted(k for k in i if k != "name_raw") != sorted(ITEM_KEYS)
            or not _is_text(i["name"])
            or any(not (i[k] is None or _is_amount(i[k])) for k in ITEM_KEYS[1:])
            or ("name_raw" in i and (i["name"] is not None or _check_spans(i["name_raw"])))
            for i in items):
        return "fields.items must be [{%s[, name_raw]}]" % ", ".join(ITEM_KEYS)
    return None


def _check_spans(spans):
    """None if spans is [[encoding, intl_set, base64], ...] of known encodings."""
    if not isinstance(spans, list) or not spans:
        return "spans must be a list"
    for span in spans:
        if not isinstance(span, list) or len(span) != 3 or not _is_str(span[0]) or \
                not _is_int(span[1]) or not _is_str(span[2]):
            return "spans must be [encoding, intl_set, base64]"
        if not is_span_encoding(span[0]):
            return "unknown encoding %r" % span[0][:32]
    return None


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
