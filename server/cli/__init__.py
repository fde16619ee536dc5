"""`tilltap`: the command line. One module per subcommand; each has add_command(subparsers).

The server's commands are listed here. Other installed packages add theirs through the entry
point group "tilltap.commands" (the host tools add demo, board and tap), so a server
deployment has the server's commands only and a developer's checkout has them all.
"""
import argparse
import sys
from importlib.metadata import entry_points

from tilltap.cli import config_doc, crm, devices, operators, parse, reextract, serve, template

COMMANDS = (parse, serve, devices, crm, reextract, template, operators, config_doc)


class _ArgumentParser(argparse.ArgumentParser):
    """Bad usage gets one line on stderr (and `--help` for the rest), exit status 2."""

    def error(self, message):
        self.exit(2, "%s: error: %s (see --help)\n" % (self.prog, message))


def build_parser():
    """The `tilltap` argument parser with every installed subcommand."""
    ap = _ArgumentParser(prog="tilltap", description="TillTap: receipt-data capture")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        command.add_command(sub)
    for plugin in sorted(entry_points(group="tilltap.commands"), key=lambda e: e.name):
        try:
            add_command = plugin.load()
        except ImportError as e:       # a half-installed plugin must not cost the server's CLI
            print("tilltap: command %s not available: %s" % (plugin.name, e), file=sys.stderr)
            continue
        add_command(sub)
    return ap


def database_arguments(ap):
    """--db and --schema, as every command that opens the database takes them."""
    import os

    from tilltap.storage.database import DEFAULT_URL
    ap.add_argument("--db", default=os.environ.get("TILLTAP_DB", DEFAULT_URL),
                    help="SQLAlchemy URL (default $TILLTAP_DB or %(default)s)")
    ap.add_argument("--schema", default=None, help="PostgreSQL schema for the tables")


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
