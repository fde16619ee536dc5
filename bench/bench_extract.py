"""Field extraction accuracy per language on generated receipts, and OCR on the raster corpus.

Receipts come from tilltap_host/receipt_factory.py (exact ground truth), are printed to
ESC/POS, parsed as a capture would be and run through tilltap.analysis.extract. Figures: share
of receipts whose field is exactly right. OCR: lines read exactly (spaces ignored) on
driver-style raster receipts (tools/tilltap_host/raster_receipts.py) per font set and script, and
on the corpus's raster streams against corpus/expected, and seconds per receipt. receipts-real:
its measure part (tilltap_host/real_receipts.py) per dataset and per shop currency, through
CPython and through the real path in upload modes full and fields. Quick mode
(TILLTAP_BENCH_QUICK=1): one seed of 40 receipts, 8 receipts through the real path, OCR of one
raster file and of one crisp receipt in the first font and width of each font set and script,
every 12th receipt of the measure part through the real path (full: 500, 40, three files, every
font, width and dithering, the whole measure part).
"""
import collections
import os
import time

from quick import size

from tilltap.analysis.extract import add_fields
from tilltap_fw.receipt import parse_stream
from tilltap_host.receipt_factory import generate_receipts
from tilltap_host.unixport import ROOT

SEEDS = size((101, 202, 303, 404, 505), (101,))
PER_SEED = size(100, 40)  # full: 500 receipts, 100 per language
CORPUS = os.environ.get("TILLTAP_CORPUS") or os.path.join(ROOT, "..", "shared", "corpus")
RASTER = size((("taoyuan__npos/raster.bin", {"encoding": "gb18030"}),
               ("taoyuan__npos/raster-2.bin", {"encoding": "gb18030"}),
               ("mike42__escpos-php/print-from-pdf.bin", {})),
              (("taoyuan__npos/raster.bin", {"encoding": "gb18030"}),))
OCR_COUNT = 1                 # driver-style receipts per font, width and dithering
OCR_FONTS = size(7, 1)        # fonts of each font set and script (quick: the first)
OCR_WIDTHS = size(3, 1)       # widths of each font set (quick: the first)
OCR_DITHERED = size((False, True), (False,))
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
            got = add_fields(parsed)["fields"]
            for name, (right, total) in checks(got, receipt.fields).items():
                score[receipt.language][name][0] += right
                score[receipt.language][name][1] += total
            count += 1
    seconds = time.perf_counter() - started
    for language in sorted(score):
        figures = ", ".join("%s %.1f%%" % (name, 100.0 * r / t)
                            for name, (r, t) in score[language].items())
        print("extract %s: %s (n=%d)" % (language, figures, score[language]["totals"][1]))
    print("extract receipts: %d in %.1f s (parse + extract)" % (count, seconds))


def ocr():
    """OCR of raster-only receipts, through tilltap.ocr.reader.ocr_stream (the server's and
    `tilltap parse --ocr`'s): lines read exactly (spaces ignored, in order) and seconds per
    receipt, on driver-style renderings per font set (tuned on / held out, Latin and Chinese,
    crisp and dithered) and on the corpus's raster streams against corpus/expected."""
    from tilltap.ocr import ppocr
    from tilltap.ocr import reader as tilltap_ocr
    from tilltap_host import raster_receipts

    ppocr.LineReader.load()
    # held-out fonts get other receipts too (seeds from 100)
    for label, (families, widths), seeds in (("tuned", raster_receipts.TUNED, 0),
                                             ("held-out", raster_receipts.HELD_OUT, 100)):
        for script in ("latin", "zh"):
            right = total = receipts = 0
            seconds = 0.0
            fonts = [font for font in map(raster_receipts.find_font, families)
                     if font is not None and font.han == (script == "zh")]
            for font in fonts[:OCR_FONTS]:
                for n, width in enumerate(widths[:OCR_WIDTHS]):
                    for dithered in OCR_DITHERED:
                        for receipt in raster_receipts.driver_receipts(
                                font, width, dithered, seed=seeds + n + 7 * dithered,
                                count=OCR_COUNT):
                            started = time.perf_counter()
                            lines = [line for r in tilltap_ocr.ocr_stream(receipt.stream)
                                     for line in r.lines]
                            seconds += time.perf_counter() - started
                            right += raster_receipts.lines_exact(lines, receipt.lines)
                            total += len(receipt.lines)
                            receipts += 1
            if receipts:
                print("ocr driver %s %s: lines exact %.1f%%, %.2f s/receipt (n=%d)"
                      % (label, script, 100.0 * right / total, seconds / receipts, receipts))
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
        with open(os.path.join(CORPUS, "expected", name + ".txt"), encoding="utf-8") as f:
            want = [line for line in f.read().splitlines() if line.strip()]
        right = raster_receipts.lines_exact([line for r in receipts for line in r.lines], want)
        totals = [r.fields.total for r in receipts]
        print("ocr %s: lines exact %.1f%%, %.2f s/receipt, %d receipt(s), totals %s"
              % (name, 100.0 * right / len(want), seconds / max(len(receipts), 1),
                 len(receipts), totals))


REAL_PATH_PER_STORE = size(5, 1)  # receipts per generated store through the firmware (8 stores)


def _view_score(view, truth):
    """field group -> right (0/1) for a receipt_view against the generator's truth."""
    items = [(i["name"], i["qty"], i["unit_price"], i["amount"]) for i in truth["items"]]
    got = [(n, q, p, a) for n, q, p, a in view["items"]]
    return {
        "totals": view["total"] == truth["total"],
        "items": [(n, _dec(q, "0.001"), _dec(p, "0.01"), _dec(a, "0.01")) for n, q, p, a in items]
        == got,
        "payments": view["payments"] == [(p["type"], _dec(p["amount"], "0.01"))
                                         for p in truth["payments"]],
        "receipt no": view["receipt_no"] == truth["receipt_no"],
        "member": view["member_id"] == truth["member_id"],
    }


def _dec(value, places):
    from decimal import Decimal
    return None if value is None else str(Decimal(value).quantize(Decimal(places)))


def real_path():
    """The same scores measured through the real path: generated receipts as TCP jobs into the
    firmware on the unix port, uploaded to `tilltap serve`, extracted there; upload modes full
    (the server extracts from the text) and fields (the board extracts), next to CPython."""
    import asyncio
    import tempfile

    from tilltap_host.demo import (
        Demo,
        parsed_receipts,
        parsed_view,
        printer_settings,
        stored_receipts,
    )

    receipts = generate_receipts(seed=606, count=8 * REAL_PATH_PER_STORE)
    groups = {"latin": [r for r in receipts if r.language != "zh"],
              "zh": [r for r in receipts if r.language == "zh"]}
    settings = {"latin": printer_settings(), "zh": printer_settings(encoding="gb18030")}

    async def run(tmp):
        demo = Demo(tmp, "http")
        try:
            await demo.start(tap=False)
            taps = []
            for key, group in groups.items():
                jobs = [(r.name, r.stream) for r in group]
                for mode in ("full", "fields"):
                    taps.append((key, mode, await demo.add_tap("%s-%s" % (key, mode),
                                                               settings[key], mode), jobs))
            await asyncio.gather(*(demo.replay(jobs, tap) for _, _, tap, jobs in taps))
            for _, _, tap, jobs in taps:
                if not await demo.wait_stored(len(jobs), 120, tap):
                    raise RuntimeError("tap %s did not deliver its receipts" % tap.device)
            await demo.wait_extracted(60)
            return [(key, mode, [v for _, v, _ in stored_receipts(demo.engine, tap.device)],
                     [parsed_view(r) for _, r in parsed_receipts(jobs, tap.options)])
                    for key, mode, tap, jobs in taps]
        finally:
            await demo.close()

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        results = asyncio.run(run(tmp))
        seconds = time.perf_counter() - started
    for key, mode, stored, parsed in results:
        score = collections.defaultdict(lambda: collections.defaultdict(lambda: [0, 0, 0]))
        for receipt, view, cpython in zip(groups[key], stored, parsed):
            mine = _view_score(view, receipt.fields)
            theirs = _view_score(cpython, receipt.fields)
            for name in mine:
                row = score[receipt.language][name]
                row[0] += mine[name]
                row[1] += theirs[name]
                row[2] += 1
        for language in sorted(score):
            figures = ", ".join("%s %.0f%% (CPython %.0f%%)" % (name, 100.0 * a / n,
                                                                 100.0 * b / n)
                                for name, (a, b, n) in score[language].items())
            print("real path, upload mode %s, %s: %s (n=%d)" % (
                mode, language, figures, score[language]["totals"][2]))
    print("real path: %d receipts x 2 upload modes in %.1f s" % (len(receipts), seconds))


REAL_MEASURE_STEP = size(1, 12)  # every receipt of receipts-real's measure part (quick: 1/12)


def real_receipts_figures():
    """receipts-real's measure part (never tuned on), per dataset and per shop currency, scored
    the corpus README's way: through `tilltap parse --fields`'s path (CPython) and through the
    real path (firmware on the unix port over TCP, `tilltap serve` over HTTP) in upload modes
    full (the server extracts) and fields (the board extracts, no text leaves it)."""
    from tilltap_host import real_receipts
    if not os.path.isdir(real_receipts.REAL):
        print("receipts-real: skipped (corpus not found)")
        return
    started = time.perf_counter()
    figures, _ = real_receipts.measure("measure")
    print("receipts-real measure part, CPython `tilltap parse --fields` (%.1f s):"
          % (time.perf_counter() - started))
    for line in real_receipts.report(figures):
        print("  " + line)
    print("  totals with the spaces lost (SROIE, CORD): %d of %d"
          % real_receipts.glued_totals("measure"))
    for how in real_receipts.PERTURBATIONS:
        print("  totals with their row damaged, %s: %d of %d"
              % ((how,) + real_receipts.perturbed_totals("measure", how)))
    _real_receipts_real_path(real_receipts)


def _real_receipts_real_path(real_receipts):
    import asyncio
    import tempfile

    from tilltap_host.demo import Demo, printer_settings, stored_receipts

    chosen = real_receipts.receipts("measure")[::REAL_MEASURE_STEP]
    jobs = [(rid, stream) for rid, stream, _ in chosen]

    async def run(tmp):
        demo = Demo(tmp, "http")
        try:
            await demo.start(tap=False)
            taps = [(mode, await demo.add_tap("real-" + mode, printer_settings(), mode))
                    for mode in ("full", "fields")]
            await asyncio.gather(*(demo.replay(jobs, tap) for _, tap in taps))
            for _, tap in taps:
                if not await demo.wait_stored(len(jobs), 120 + len(jobs), tap):
                    raise RuntimeError("tap %s did not deliver its receipts" % tap.device)
            await demo.wait_extracted(120)
            return [(mode, [v for _, v, _ in stored_receipts(demo.engine, tap.device)])
                    for mode, tap in taps]
        finally:
            await demo.close()

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        results = asyncio.run(run(tmp))
        seconds = time.perf_counter() - started
    for mode, views in results:
        totals = {}
        for (_rid, _stream, truth), view in zip(chosen, views):
            # no dates: where none is read the server stores the capture time instead
            fields = {"total": view["total"], "currency": view["currency"],
                      "items": [{"name": n, "qty": q, "amount": a}
                                for n, q, _p, a in view["items"]]}
            got = real_receipts.score(fields, view["lines"] if mode == "full" else None,
                                      dict(truth, date=None))
            for group in (truth["dataset"], "all"):
                row = totals.setdefault(group, {})
                for figure, (right, out_of) in got.items():
                    cell = row.setdefault(figure, [0, 0])
                    cell[0] += right
                    cell[1] += out_of
        print("receipts-real measure part, real path, upload mode %s (%d receipts):"
              % (mode, len(views)))
        for line in real_receipts.report(totals):
            print("  " + line)
    print("receipts-real real path: %d receipts x 2 upload modes in %.1f s"
          % (len(jobs), seconds))


if __name__ == "__main__":
    extraction()
    real_receipts_figures()
    real_path()
    ocr()
