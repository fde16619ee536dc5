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


def database_arguments(ap, after=False):
    """--db and --schema, as every command that opens the database takes them; after: an
    action's own, which override the command's only when given (database_arguments_after)."""
    from tilltap.storage.database import DEFAULT_URL
    ap.add_argument("--db", default=argparse.SUPPRESS if after else
                    os.environ.get("TILLTAP_DB", DEFAULT_URL),
                    help="SQLAlchemy URL (default $TILLTAP_DB or %s)" % DEFAULT_URL)
    ap.add_argument("--schema", default=argparse.SUPPRESS if after else None,
                    help="PostgreSQL schema for the tables")


def database_arguments_after(actions):
    """--db and --schema after the action too (`tilltap devices add ID --db URL`), for every
    action of a command's subparsers (actions)."""
    for parser in actions.choices.values():
        database_arguments(parser, after=True)


def main(argv=None):
    """Runs one subcommand; a database that cannot be opened and a closed pipe end in one line,
    not a traceback."""
    args = build_parser().parse_args(argv)
    name = "tilltap " + (argv or sys.argv[1:] or ["?"])[0]
    if getattr(args, "db", None):
        problem = _database_problem(args.db, getattr(args, "schema", None))
        if problem:
            print("%s: %s" % (name, problem), file=sys.stderr)
            return 2
    try:
        return args.run(args)
    except BrokenPipeError:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            # the reader went away (`tilltap parse ... | head`): stop quietly, as cat does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        raise   # a socket's, not stdout's


def _database_problem(url, schema):
    """Why the database at url cannot be opened (one line, password hidden), or None."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    from tilltap.storage.database import make_engine
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError as e:
        return "the database URL cannot be read: %s" % e
    try:
        engine = make_engine(url, schema=schema)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except (OperationalError, NoSuchModuleError, ArgumentError) as e:
        reason = str(getattr(e, "orig", None) or e).splitlines()[0]
        return "the database cannot be opened (--db %s): %s" % (shown, reason)
    return None


if __name__ == "__main__":
    sys.exit(main())
