"""`tilltap operators add NAME`: a dashboard operator (asks for the password, or reads
$TILLTAP_OPERATOR_PASSWORD)."""
import getpass
import os
import sys

from tilltap.accounts import operators
from tilltap.storage.database import make_engine


def add_command(sub):
    from tilltap.cli import database_arguments, database_arguments_after
    ap = sub.add_parser("operators", help="dashboard operators (login for reports and customer "
                                          "data)",
                        description="Create operators; device credentials never open the "
                                    "dashboard.")
    database_arguments(ap)
    actions = ap.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    p = actions.add_parser("add", help="create a dashboard operator")
    p.add_argument("username")
    database_arguments_after(actions)
    ap.set_defaults(run=run)


def run(args):
    engine = make_engine(args.db, schema=args.schema)
    password = os.environ.get("TILLTAP_OPERATOR_PASSWORD") or getpass.getpass("password: ")
    try:
        operators.add(engine, args.username, password)
    except operators.OperatorError as e:
        print("tilltap operators: %s" % e, file=sys.stderr)
        return 1
    print("operator %s added" % args.username)
    return 0
