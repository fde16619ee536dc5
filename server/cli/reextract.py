"""`tilltap reextract [--device ID]`: extract every stored receipt's fields again (after a rule
or layout template change)."""
import sys

from tilltap.analysis import extraction
from tilltap.storage.database import make_engine


def add_command(sub):
    from tilltap.cli import database_arguments
    ap = sub.add_parser("reextract", help="extract the fields of every stored receipt again",
                        description="Re-run field extraction (rules and layout templates) on "
                                    "stored receipts.")
    database_arguments(ap)
    ap.add_argument("--device", help="only this tap's receipts")
    ap.set_defaults(run=run)


def run(args):
    engine = make_engine(args.db, schema=args.schema)

    def progress(done, total):
        print("\r%d / %d receipts" % (done, total), end="", file=sys.stderr, flush=True)

    done = extraction.reextract_all(engine, progress, device_id=args.device)
    if not done and args.device:
        print("tilltap reextract: no receipts stored for device %s" % args.device,
              file=sys.stderr)
        return 1
    print("\n%d receipts extracted" % done)
    failed = extraction.failures(engine, args.device)
    if failed:
        print("%d receipts not extracted: see the extraction_errors table and the log" % failed)
    return 0
