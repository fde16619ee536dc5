"""Device configuration: one JSON file, validated at boot, defaults for everything optional.

    cfg = config.load("/config.json")      # raises ConfigError("printer.baudrate: ...")
    cfg["printer"]["baudrate"]

SCHEMA is the one place where every setting, its type, default, allowed values and meaning
live; the README's configuration table is generated from it (`tilltap config-doc`, checked by
a test).
"""
import json

from .escpos_parser import ENCODINGS, PROFILES, VENDORS


class ConfigError(ValueError):
    """A bad setting; the message starts with the dotted name of the field."""


_REQUIRED = object()

# name: (type, default, allowed, meaning) -- allowed is a tuple of values, a (min, max) range,
# or None. `tilltap config-doc` prints this as the README's table.
SCHEMA = {
    "device_id": (str, "", None, "empty: machine.unique_id() as hex; else 1-64 of 0-9 a-z _ -"),
    "mode": (str, "inline", ("inline", "listen", "network"),
             "inline between POS and printer, listen-only on a Y-cable, or a TCP 9100 proxy"),
    "wifi.ssid": (str, "", None, "the shop's Wi-Fi"),
    "wifi.password": (str, "", None, ""),
    "wifi.connect_timeout_ms": (int, 20000, (1000, 120000), ""),
    "server.transport": (str, "mqtt", ("mqtt", "http"), ""),
    "server.host": (str, "", None, "empty: no uplink (receipts stay in the spool)"),
    "server.port": (int, 0, (0, 65535), "0: 1883/8883 for MQTT, 80/443 for HTTP"),
    "server.tls": (bool, False, None, "MQTT over TLS verifies the server with server.ca_file"),
    "server.ca_file": (str, "", None, "the CA certificate (PEM) on the board"),
    "server.credential": (str, "", None, "written by `make provision`"),
    "server.timeout_ms": (int, 2000, (200, 60000), "the longest any network wait may take"),
    "printer.profile": (str, "epson", PROFILES, "star: Star Line Mode"),
    "printer.codepage_map": (str, "epson", VENDORS, "the vendor's numbering of ESC t"),
    "printer.model": (str, "", None,
                      ("a model of escpos-printer-db (TM-T88V, POS-5890, ...): its numbering of "
                       "ESC t first, then codepage_map; whether it cuts (split.tear_off)")),
    "printer.encoding": (str, "", ("",) + ENCODINGS[1:],
                         "set: the printer starts in this CJK mode"),
    "printer.baudrate": (int, 115200, (1200, 921600), "the POS and the printer must use the same"),
    "printer.flow": (str, "none", ("none", "rtscts"), ""),
    "printer.host": (str, "", None, "network mode: the printer's address"),
    "printer.port": (int, 9100, (1, 65535), "network mode: the printer's port"),
    "printer.connect_timeout_ms": (int, 3000, (100, 60000),
                                   "network mode: a printer not connected by then is unreachable"),
    "printer.stall_ms": (int, 300000, (0, 3600000),
                         ("the printer took no byte for this long while bytes wait: the job "
                          "is given up, both sides reset (0: never)")),
    "pos.listen_port": (int, 9100, (1, 65535), "network mode: where the POS connects"),
    "pos.bind": (str, "0.0.0.0", None, "network mode: the address the tap listens on"),
    "pos.backlog": (int, 4, (1, 16), "network mode: connections the OS holds unaccepted"),
    "pos.queue": (int, 3, (0, 8),
                  "network mode: POS connections accepted while another's job prints"),
    "pos.yield_ms": (int, 3000, (100, 600000),
                     ("network mode: a POS connection this long without a byte gives the "
                      "printer to a waiting one")),
    "pos.reply_wait_ms": (int, 2000, (0, 60000),
                          ("network mode: after the POS half-closes, how long the printer's "
                           "answers to it may take")),
    "capture.policy": (str, "auto", ("auto", "keep_pace", "forwarding_first"),
                       ("keep_pace: forwarding may slow to the parser's pace, no receipt lost; "
                        "forwarding_first: never slowed, overflow stored incomplete; auto: "
                        "forwarding_first when the backlog holds a burst (256 KiB), else "
                        "keep_pace (see The tap's capture policy)")),
    "split.idle_ms": (int, 3000, (100, 600000),
                      "no byte for this long ends a receipt (tear-bar printers)"),
    "split.on_init": (bool, False, None, "also end a receipt at ESC @ after printed content"),
    "split.tear_off": (str, "auto", ("auto", "on", "off"),
                       ("end a receipt at a tear-off feed (see Printers without a cutter); "
                        "auto: on when printer.model has no cutter")),
    "split.tear_lines": (int, 5, (1, 255),
                         "a feed of this many lines or more is a tear-off feed"),
    # not /spool: a directory named like a module shadows it
    "spool.dir": (str, "/data/spool", None, "where receipts wait for the server's ack"),
    "spool.max_bytes": (int, 1024 * 1024, (16 * 1024, 1 << 30), "bytes of records at most"),
    "spool.min_free": (int, 64 * 1024, (0, 1 << 30), "free flash always left"),
    "spool.when_full": (str, "drop_oldest", ("drop_oldest", "stop_capturing"),
                        "drops are counted and their seq ranges reported"),
    "upload.mode": (str, "full", ("full", "text", "fields"),
                    "what leaves the board (see Upload modes)"),
    "upload.raw_bytes_max": (int, 4096, (0, 1 << 20),
                             "a receipt's raw ESC/POS bytes are sent when they fit"),
    "upload.images": (bool, False, None,
                      "also send the raw bytes of receipts with images (server-side OCR)"),
    "upload.batch_count": (int, 20, (1, 500), "records per batch at most"),
    "upload.batch_bytes": (int, 4096, (1024, 1 << 20),
                           "bytes per batch at most (one contiguous buffer on the heap)"),
    "upload.idle_ms": (int, 200, (10, 60000), "between uplink steps when nothing is pending"),
    "ntp.host": (str, "pool.ntp.org", None, ""),
    "watchdog_ms": (int, 8000, (0, 60000), "0 disables the hardware watchdog"),
}


def defaults():
    """A full configuration with every default."""
    return validate({})


def validate(given):
    """Returns the full configuration for a parsed JSON object; raises ConfigError."""
    if not isinstance(given, dict):
        raise ConfigError("(top level): must be a JSON object")
    sections = {n.split(".")[0] for n in SCHEMA if "." in n}
    for key, value in given.items():
        if key in sections:
            if not isinstance(value, dict):
                raise ConfigError("%s: must be an object" % key)
            for sub in value:
                if key + "." + sub not in SCHEMA:
                    raise ConfigError("%s.%s: unknown setting" % (key, sub))
        elif key not in SCHEMA:
            raise ConfigError("%s: unknown setting" % key)
    cfg = {}
    for name, (kind, default, allowed, _) in SCHEMA.items():
        value = _get(given, name, default)
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            raise ConfigError("%s: must be %s, got %r" % (name, _TYPE_NAMES[kind], value))
        if allowed is not None:
            if isinstance(allowed[0], int) and kind is int:
                if not allowed[0] <= value <= allowed[1]:
                    raise ConfigError("%s: must be between %d and %d, got %d"
                                      % (name, allowed[0], allowed[1], value))
            elif value not in allowed:
                raise ConfigError("%s: must be one of %s, got %r"
                                  % (name, ", ".join(repr(a) for a in allowed), value))
        _put(cfg, name, value)
    if cfg["mode"] == "network" and not cfg["printer"]["host"]:
        raise ConfigError("printer.host: required in network mode")
    model = cfg["printer"]["model"]
    if model:
        from .printer_models import find  # the models' tables only when a model is set
        if find(model) is None:
            raise ConfigError("printer.model: %r is not a model of escpos-printer-db (`tilltap "
                              "parse --printer-model list` lists them)" % model)
    return cfg


def load(path):
    """Reads and validates the JSON file at path; raises ConfigError naming the bad field."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ConfigError("(file) %s: cannot read (%s)" % (path, e))
    try:
        given = json.loads(text)
    except ValueError as e:
        raise ConfigError("(file) %s: not valid JSON (%s)" % (path, e))
    return validate(given)


_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false"}


def _get(obj, name, default):
    for part in name.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return default
        obj = obj[part]
    return obj


def _put(obj, name, value):
    parts = name.split(".")
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    obj[parts[-1]] = value
