"""Device configuration: one JSON file, validated at boot, defaults for everything optional.

    cfg = config.load("/config.json")      # raises ConfigError("printer.baudrate: ...")
    cfg["printer"]["baudrate"]

SCHEMA is the one place where every setting, its type, default and allowed values live; the
README's configuration table is generated from it (`tilltap config-doc`).
"""
import json


class ConfigError(ValueError):
    """A bad setting; the message starts with the dotted name of the field."""


_REQUIRED = object()

# name: (type, default, allowed) -- allowed is a tuple of values, a (min, max) range, or None
SCHEMA = {
    "device_id": (str, "", None),            # empty: machine.unique_id() as hex
    "mode": (str, "inline", ("inline", "listen", "network")),
    "wifi.ssid": (str, "", None),
    "wifi.password": (str, "", None),
    "wifi.connect_timeout_ms": (int, 20000, (1000, 120000)),
    "server.transport": (str, "mqtt", ("mqtt", "http")),
    "server.host": (str, "", None),
    "server.port": (int, 0, (0, 65535)),     # 0: 1883/8883 for MQTT, 80/443 for HTTP
    "server.path": (str, "/api/v1/ingest", None),
    "server.tls": (bool, False, None),
    "server.ca_file": (str, "", None),
    "server.credential": (str, "", None),
    "server.timeout_ms": (int, 2000, (200, 60000)),  # the longest a network step may hold the loop
    "printer.profile": (str, "epson", ("epson", "star")),
    "printer.codepage_map": (str, "epson", ("epson", "star", "bixolon", "zjiang", "xprinter",
                                            "rongta")),
    "printer.encoding": (str, "", ("", "gb18030", "big5", "shift_jis", "cp949")),
    "printer.baudrate": (int, 115200, (1200, 921600)),
    "printer.flow": (str, "none", ("none", "rtscts")),
    "printer.host": (str, "", None),         # network mode: the printer's address
    "printer.port": (int, 9100, (1, 65535)),
    "pos.listen_port": (int, 9100, (1, 65535)),
    "split.idle_ms": (int, 3000, (100, 600000)),
    "split.on_init": (bool, False, None),
    "spool.dir": (str, "/data/spool", None),  # not /spool: a directory named like a module shadows it
    "spool.max_bytes": (int, 1024 * 1024, (16 * 1024, 1 << 30)),
    "spool.min_free": (int, 64 * 1024, (0, 1 << 30)),
    "spool.when_full": (str, "drop_oldest", ("drop_oldest", "stop_capturing")),
    "upload.mode": (str, "full", ("full", "text", "fields")),
    "upload.raw_bytes_max": (int, 4096, (0, 1 << 20)),
    "upload.images": (bool, False, None),
    "upload.batch_count": (int, 20, (1, 500)),
    "upload.batch_bytes": (int, 4096, (1024, 1 << 20)),  # one contiguous buffer on the heap
    "upload.idle_ms": (int, 200, (10, 60000)),
    "ntp.host": (str, "pool.ntp.org", None),
    "watchdog_ms": (int, 8000, (0, 60000)),
}


def defaults():
    """A full configuration with every default."""
    return validate({})


def validate(given):
    """Returns the full configuration for a parsed JSON object; raises ConfigError."""
    if not isinstance(given, dict):
        raise ConfigError("(top level): must be a JSON object")
    sections = set(n.split(".")[0] for n in SCHEMA if "." in n)
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
    for name, (kind, default, allowed) in SCHEMA.items():
        value = _get(given, name, default)
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
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
