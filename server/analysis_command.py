"""`tilltap crm import`, `tilltap reextract`, `tilltap operators add`: the analysis side from
the command line.

    tilltap crm import customers.csv          # upsert by member_id; bad rows listed on stderr
    tilltap reextract                         # all receipts again (new rules or templates)
    tilltap operators add alice               # asks for the password (or $TILLTAP_OPERATOR_PASSWORD)
    tilltap template test DEVICE SEQ t.json   # what a layout template extracts from a receipt
"""
import getpass
import json
import os
import sys

from tilltap import analysis, crm, db, operators


def _db_arguments(ap):
    ap.add_argument("--db", default=os.environ.get("TILLTAP_DB", db.DEFAULT_URL),
                    help="SQLAlchemy URL (default $TILLTAP_DB or %(default)s)")
    ap.add_argument("--schema", default=None, help="PostgreSQL schema for the tables")


def add_crm_arguments(ap):
    _db_arguments(ap)
    sub = ap.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("import", help="import customers from CSV (member_id, phone, name, email, ...)")
    p.add_argument("csv_file")
    ap.set_defaults(run=run_crm)


def run_crm(args):
    engine = db.make_engine(args.db, schema=args.schema)
    with open(args.csv_file, newline="", encoding="utf-8-sig") as f:
        imported, errors = crm.import_csv(engine, f)
    for row, reason in errors:
        print("%s:%d: %s" % (args.csv_file, row, reason), file=sys.stderr)
    print("%d customers imported, %d rows refused" % (imported, len(errors)))
    return 1 if errors and not imported else 0


def add_reextract_arguments(ap):
    _db_arguments(ap)
    ap.add_argument("--device", help="only this tap's receipts")
    ap.set_defaults(run=run_reextract)


def run_reextract(args):
    engine = db.make_engine(args.db, schema=args.schema)

    def progress(done, total):
        print("\r%d / %d receipts" % (done, total), end="", file=sys.stderr, flush=True)

    done = analysis.reextract_all(engine, progress, device_id=args.device)
    print("\n%d receipts extracted" % done)
    return 0


def add_operators_arguments(ap):
    _db_arguments(ap)
    sub = ap.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("add", help="create a dashboard operator")
    p.add_argument("username")
    ap.set_defaults(run=run_operators)


def run_operators(args):
    engine = db.make_engine(args.db, schema=args.schema)
    password = os.environ.get("TILLTAP_OPERATOR_PASSWORD") or getpass.getpass("password: ")
    try:
        operators.add(engine, args.username, password)
    except operators.OperatorError as e:
        print("tilltap operators: %s" % e, file=sys.stderr)
        return 1
    print("operator %s added" % args.username)
    return 0


def add_template_arguments(ap):
    _db_arguments(ap)
    sub = ap.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("test", help="show what a layout template extracts from a stored receipt")
    p.add_argument("device_id")
    p.add_argument("seq", type=int)
    p.add_argument("template_file", help="the template JSON (as PUT /api/v1/templates takes)")
    ap.set_defaults(run=run_template)


def run_template(args):
    engine = db.make_engine(args.db, schema=args.schema)
    try:
        with open(args.template_file) as f:
            template = json.load(f)
        result = analysis.try_template(engine, args.device_id, args.seq, template)
    except (OSError, ValueError, LookupError) as e:
        print("tilltap template: %s" % e, file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return 0
