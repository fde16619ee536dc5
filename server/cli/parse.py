"""`tilltap parse`: ESC/POS files in, one JSON object per file out."""
import json
import sys

from tilltap.analysis.extract import add_fields
from tilltap_fw import escpos_parser
from tilltap_fw.receipt import parse_stream


def add_command(sub):
    ap = sub.add_parser("parse", help="parse ESC/POS print streams into receipts (JSON lines)",
                        description="Parse ESC/POS print streams; prints one JSON object per "
                                    "file.")
    ap.add_argument("files", nargs="+", metavar="FILE")
    ap.add_argument("--profile", choices=escpos_parser.PROFILES, default="epson")
    ap.add_argument("--codepage-map", default=None, metavar="VENDOR",
                    help="vendor numbering of ESC t (epson, star, bixolon, zjiang, xprinter, "
                         "rongta)")
    ap.add_argument("--encoding", default=None,
                    choices=[e for e in escpos_parser.ENCODINGS if e],
                    help="the printer's default multibyte (CJK) encoding")
    ap.add_argument("--chunk-size", type=int, default=0, metavar="N",
                    help="feed the parser N bytes at a time (default: whole file)")
    ap.add_argument("--fields", action="store_true",
                    help="add the extracted consumption data (total, items, payments, ...) to "
                         "each receipt; card numbers are masked")
    ap.set_defaults(run=run)


def run(args):
    if args.chunk_size < 0:
        print("tilltap parse: --chunk-size must be positive", file=sys.stderr)
        return 2
    options = {"profile": args.profile, "codepage_map": args.codepage_map,
               "encoding": args.encoding}
    try:
        escpos_parser.Parser(**options)
    except ValueError as e:
        print("tilltap parse: %s" % e, file=sys.stderr)
        return 2
    status = 0
    for path in args.files:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            print("tilltap parse: %s: %s" % (path, e.strerror or e), file=sys.stderr)
            status = 1
            continue
        try:
            receipts, stats = parse_stream(data, args.chunk_size, **options)
            if args.fields:
                receipts = [add_fields(r) for r in receipts]
        except Exception as e:  # noqa: BLE001 -- one bad file must not stop the batch
            print("tilltap parse: %s: %s: %s" % (path, type(e).__name__, e), file=sys.stderr)
            status = 1
            continue
        print(json.dumps({"file": path, "receipts": receipts, "stats": stats},
                         ensure_ascii=False), flush=True)
    return status
