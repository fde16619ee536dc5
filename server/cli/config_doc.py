"""`tilltap config-doc`: the device configuration's settings as the README's Markdown table,
from config.SCHEMA (the one place a setting, its default, its allowed values and its meaning
live). A test checks that the README holds exactly this table."""
import json

from tilltap_fw import config

_SIZES = ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"))


def _value(kind, value, name=""):
    if kind is bool:
        return "true" if value else "false"
    if kind is str:
        return "`%s`" % json.dumps(value)
    if "baud" not in name:   # a rate in bits per second is no size
        for size, unit in _SIZES:
            if value >= size and value % size == 0 and value > 1 << 12:
                return "%d %s" % (value // size, unit)
    return str(value)


def _allowed(kind, allowed, name):
    if allowed is None:
        return ""
    if kind is int:
        return "%s to %s" % (_value(kind, allowed[0], name), _value(kind, allowed[1], name))
    return ", ".join("`%s`" % a if a else '`""`' for a in allowed)


def markdown_table():
    """The settings table: setting, default, allowed values, meaning."""
    rows = ["| setting | default | allowed | meaning |", "|---|---|---|---|"]
    for name, (kind, default, allowed, meaning) in config.SCHEMA.items():
        rows.append("| `%s` | %s | %s | %s |" % (name, _value(kind, default, name),
                                                  _allowed(kind, allowed, name), meaning))
    return "\n".join(rows)


def add_command(sub):
    ap = sub.add_parser("config-doc", help="print the device settings as a Markdown table",
                        description="The table of every device setting, its default, allowed "
                                    "values and meaning (README, Configuration).")
    ap.set_defaults(run=run)


def run(args):
    print(markdown_table())
    return 0
