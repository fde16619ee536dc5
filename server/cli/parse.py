"""`tilltap parse`: ESC/POS files in, one JSON object per file out."""
import json
import sys

from tilltap.analysis.extract import add_fields
from tilltap_fw import config, escpos_parser, printer_models, protocol
from tilltap_fw.receipt import parse_stream


def add_command(sub):
    ap = sub.add_parser("parse", help="parse ESC/POS print streams into receipts (JSON lines)",
                        description="Parse ESC/POS print streams; prints one JSON object per "
                                    "file.")
    ap.add_argument("files", nargs="*", metavar="FILE")
    ap.add_argument("--profile", choices=escpos_parser.PROFILES, default="epson")
    ap.add_argument("--codepage-map", default=None, metavar="VENDOR",
                    help="vendor numbering of ESC t (epson, star, bixolon, zjiang, xprinter, "
                         "rongta)")
    ap.add_argument("--encoding", default=None,
                    choices=[e for e in escpos_parser.ENCODINGS if e],
                    help="the printer's default multibyte (CJK) encoding")
    ap.add_argument("--printer-model", default="", metavar="MODEL",
                    help="the printer's model in escpos-printer-db (its ESC t numbering, "
                         "whether it cuts); 'list' lists them")
    ap.add_argument("--tear-off", choices=config.SCHEMA["split.tear_off"][2],
                    default=config.SCHEMA["split.tear_off"][1],
                    help="end receipts at tear-off feeds (auto: when the model has no cutter)")
    ap.add_argument("--tear-lines", type=int, default=config.SCHEMA["split.tear_lines"][1],
                    metavar="N", help="a feed of N lines or more is a tear-off feed")
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
    if args.printer_model == "list":
        for model in printer_models.names():
            print("%-16s %s" % (model, "cutter" if printer_models.cuts(model) else
                                "no cutter (tear-off)"))
        return 0
    if not args.files:
        print("tilltap parse: no FILE given", file=sys.stderr)
        return 2
    try:
        options = printer_options(args)
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
        receipts, stats = parse_stream(data, args.chunk_size, **options)
        if args.fields:
            receipts = [add_fields(r) for r in receipts]
        print(json.dumps({"file": path, "receipts": receipts, "stats": stats},
                         ensure_ascii=False), flush=True)
    return status


def printer_options(args):
    """Parser options for the command line's printer settings, resolved as the board resolves
    its configuration (config.validate, protocol.printer_context); raises ValueError."""
    cfg = config.validate({
        "printer": {"profile": args.profile, "encoding": args.encoding or "",
                    "codepage_map": args.codepage_map or (
                        "star" if args.profile == "star" else "epson"),
                    "model": args.printer_model},
        "split": {"tear_off": args.tear_off, "tear_lines": args.tear_lines}})
    return protocol.parser_options(protocol.printer_context(cfg["printer"], cfg["split"]))
