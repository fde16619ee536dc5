"""Field extraction accuracy per language on generated receipts, and OCR on the raster corpus.

Receipts come from tests/receipt_factory.py (exact ground truth), are printed to ESC/POS, parsed
as a capture would be and run through tilltap.extract. Figures: share of receipts whose field is
exactly right. OCR: character similarity (difflib ratio after whitespace and full-width
normalisation) of Tesseract's text with corpus/expected, and seconds per receipt.
"""
import collections
import difflib
import os
import shutil
import sys
import time
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tests"), os.path.join(ROOT, "firmware"), ROOT]

import server  # noqa: E402,F401  (puts firmware/ on sys.path as `tilltap` does)
from receipt_factory import generate_receipts  # noqa: E402
from tilltap.extract import add_fields  # noqa: E402
from tilltap.parse_command import parse_stream  # noqa: E402

SEEDS = (101, 202, 303, 404, 505)
PER_SEED = 100          # 500 receipts, 100 per language
CORPUS = os.environ.get("TILLTAP_CORPUS") or os.path.join(ROOT, "..", "shared", "corpus")
RASTER = (("taoyuan__npos/raster.bin", {"encoding": "gb18030"}),
          ("taoyuan__npos/raster-2.bin", {"encoding": "gb18030"}),
          ("mike42__escpos-php/print-from-pdf.bin", {}))
OTHER = ("subtotal", "currency", "receipt_no", "datetime", "member_id", "store", "cashier", "tax",
         "tendered", "change")
ITEM_KEYS = ("name", "qty", "unit_price", "amount")


def checks(got, truth):
    """field group -> (right, out of) for one receipt."""
    other = sum(got[k] == truth[k] for k in OTHER)
    payments = [(p["type"], p["amount"]) for p in got["payments"]] == \
        [(p["type"], p["amount"]) for p in truth["payments"]]
    items = [{k: i[k] for k in ITEM_KEYS} for i in got["items"]] == \
        [{k: i[k] for k in ITEM_KEYS} for i in truth["items"]]
    return {"totals": (got["total"] == truth["total"], 1), "items": (items, 1),
            "payments": (payments, 1), "other fields": (other, len(OTHER))}


def extraction():
    score = collections.defaultdict(lambda: collections.defaultdict(lambda: [0, 0]))
    count = 0
    started = time.perf_counter()
    for seed in SEEDS:
        for receipt in generate_receipts(seed=seed, count=PER_SEED):
            encoding = "gb18030" if receipt.language == "zh" else None
            (parsed,), _ = parse_stream(receipt.stream, encoding=encoding)
            for name, (right, total) in checks(add_fields(parsed)["fields"], receipt.fields).items():
                score[receipt.language][name][0] += right
                score[receipt.language][name][1] += total
            count += 1
    seconds = time.perf_counter() - started
    for language in sorted(score):
        figures = ", ".join("%s %.1f%%" % (name, 100.0 * r / t) for name, (r, t) in score[language].items())
        print("extract %s: %s (n=%d)" % (language, figures, score[language]["totals"][1]))
    print("extract receipts: %d in %.1f s (parse + extract)" % (count, seconds))


def normalise(text):
    text = unicodedata.normalize("NFKC", text).replace("—", "-").replace("一", "-")
    return "".join(text.split())


def ocr():
    if shutil.which("tesseract") is None:
        print("ocr: skipped (tesseract not installed)")
        return
    from tilltap import ocr as tilltap_ocr
    for name, options in RASTER:
        path = os.path.join(CORPUS, "real", name)
        if not os.path.exists(path):
            print("ocr %s: skipped (corpus not found)" % name)
            continue
        with open(path, "rb") as f:
            data = f.read()
        started = time.perf_counter()
        receipts = tilltap_ocr.ocr_stream(data, **options)
        seconds = time.perf_counter() - started
        text = "\n".join(line for r in receipts for line in r.lines)
        with open(os.path.join(CORPUS, "expected", name + ".txt"), encoding="utf-8") as f:
            want = f.read()
        ratio = difflib.SequenceMatcher(None, normalise(text), normalise(want), autojunk=False).ratio()
        totals = [r.fields.total for r in receipts]
        print("ocr %s: similarity %.3f, %.2f s/receipt, %d receipt(s), totals %s"
              % (name, ratio, seconds / max(len(receipts), 1), len(receipts), totals))


if __name__ == "__main__":
    extraction()
    ocr()
