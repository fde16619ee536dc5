"""`tilltap crm import customers.csv`: upsert customers by member ID; bad rows on stderr."""
import sys

from tilltap.analysis import crm
from tilltap.storage.database import make_engine


def add_command(sub):
    from tilltap.cli import database_arguments, database_arguments_after
    ap = sub.add_parser("crm", help="customer data: import a CSV (member_id, phone, name, "
                                    "email, ...)",
                        description="Upsert customers by member ID and link their receipts.")
    database_arguments(ap)
    actions = ap.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    p = actions.add_parser("import", help="import customers from CSV (member_id, phone, name, "
                                          "email, ...)")
    p.add_argument("csv_file")
    database_arguments_after(actions)
    ap.set_defaults(run=run)


def run(args):
    engine = make_engine(args.db, schema=args.schema)
    try:
        with open(args.csv_file, newline="", encoding="utf-8-sig") as f:
            imported, errors = crm.import_csv(engine, f)
    except UnicodeDecodeError:
        print("tilltap crm import: %s is not UTF-8 (save it as \"CSV UTF-8\")" % args.csv_file,
              file=sys.stderr)
        return 2
    except OSError as e:
        print("tilltap crm import: %s" % e, file=sys.stderr)
        return 2
    for row, reason in errors:
        print("%s:%d: %s" % (args.csv_file, row, reason), file=sys.stderr)
    print("%d customers imported, %d rows refused" % (imported, len(errors)))
    return 1 if errors and not imported else 0
