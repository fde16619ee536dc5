"""`tilltap parse`: ESC/POS files in, one JSON object per file out."""
import json
import sys
import time

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
    ap.add_argument("--ocr", action="store_true",
                    help="read raster-only receipts (a driver's picture of the text) with the "
                         "server's OCR: adds \"ocr\": {\"lines\", \"seconds\"}; --fields then "
                         "extracts from the printed and the OCR lines")
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
        try:
            receipts, stats = parse_stream(data, args.chunk_size, **options)
            if args.ocr:
                receipts = read_raster(data, receipts, options)
            if args.fields:
                receipts = [add_fields(r) for r in receipts]
        except Exception as e:  # noqa: BLE001 - one bad file must not stop the batch
            print("tilltap parse: %s: %s: %s" % (path, type(e).__name__, e), file=sys.stderr)
            status = 1
            continue
        print(json.dumps({"file": path, "receipts": receipts, "stats": stats},
                         ensure_ascii=False), flush=True)
    return status


def read_raster(data: bytes, receipts: list[dict], options: dict) -> list[dict]:
    """The receipts with "ocr" added to each raster-only one (ocr.raster_only): its page read
    as the server reads it (tilltap.ocr.reader.ocr_image). Its OCR lines follow its printed
    lines in "lines", as the server extracts fields from both."""
    from tilltap.ocr import ppocr, reader

    ppocr.LineReader.load()         # loaded once, before the first receipt's time is taken
    pages = reader.receipt_pages(data, **options)
    if len(pages) != len(receipts):
        raise ValueError("%d receipts but %d pages" % (len(receipts), len(pages)))
    out = []
    for receipt, (_, _, page) in zip(receipts, pages):
        if page is not None and reader.raster_only(receipt):
            started = time.perf_counter()
            lines = reader.ocr_image(page)
            receipt = dict(receipt, lines=receipt["lines"] + lines,
                           ocr={"lines": lines,
                                "seconds": round(time.perf_counter() - started, 3)})
        out.append(receipt)
    return out


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
