"""`tilltap`: the command line. One module per subcommand; each has add_command(subparsers).

The server's commands are listed here. Other installed packages add theirs through the entry
point group "tilltap.commands" (the host tools add demo, board and tap), so a server
deployment has the server's commands only and a developer's checkout has them all.
"""
import argparse
import os
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
    """Runs one subcommand; what a user can get wrong ends in one line, not a traceback."""
    import ssl

    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    args = build_parser().parse_args(argv)
    name = "tilltap " + (argv or sys.argv[1:] or ["?"])[0]
    try:
        return args.run(args)
    except (OperationalError, NoSuchModuleError, ArgumentError) as e:
        print("%s: the database cannot be used (--db %s): %s"
              % (name, getattr(args, "db", "?"), str(e.orig if hasattr(e, "orig") else e)
                 .splitlines()[0]), file=sys.stderr)
        return 2
    except ssl.SSLError as e:
        print("%s: TLS certificate or key (--tls-cert, --tls-key): %s" % (name, e),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`tilltap parse ... | head`): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
