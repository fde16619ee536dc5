"""One truth: what the server stores after the real path equals what `tilltap parse --fields`
prints for the same stream with the same printer options.

The real path: each stream is one TCP job from a POS into the firmware on the MicroPython unix
port (host board, network mode), on to a virtual printer; the tap uploads over HTTP to
`tilltap serve`, which decodes, stores and extracts. Taps run with three printer settings
(Epson, Star Line Mode, GB18030) in the two upload modes that carry text (full, text), all at
once against one server; and in upload mode fields, where only the board's extraction leaves
the board, which must find the same consumption data. Compared per receipt: the text lines,
barcodes, 2D codes and the consumption fields; and no line may be stored undecoded (null) or
as \\xNN unless `tilltap parse` prints it so too (bytes no codec takes).
"""
import asyncio
import json
import os
import re

import pytest
from corpus import CORPUS, corpus_files, need_corpus, options_for, short
from sqlalchemy import select

from tilltap.storage import schema
from tilltap_host.demo import Demo, parsed_receipts, parsed_view, printer_settings, stored_receipts
from tilltap_host.receipt_factory import generate_receipts

REAL = os.path.join(CORPUS, "receipts-real")
# The fixed subset of receipts-real in `make test`: every 16th receipt of each dataset (all of
# them in `make soak`).
REAL_STEP = 16
_SPACES = re.compile(r" +")


def real_receipts(step=REAL_STEP):
    """[(name, stream, ground-truth lines)] of every step-th receipt of receipts-real."""
    out = []
    for dataset in ("sroie", "cord", "wildreceipt"):
        names = sorted(n for n in os.listdir(os.path.join(REAL, dataset)) if n.endswith(".bin"))
        for name in names[::step]:
            base = os.path.join(REAL, dataset, name[:-4])
            with open(base + ".bin", "rb") as f, open(base + ".json") as g:
                out.append(("%s/%s" % (dataset, name), f.read(), json.load(g)["lines"]))
    return out


def _printer(options):
    return printer_settings(options.get("profile", "epson"), None, options.get("encoding"))


def job_groups(step):
    """({printer group: (printer settings, [(name, stream)])}, {name: ground-truth lines})."""
    groups = {"epson": [], "star": [], "gb18030": []}
    truth = {}
    for path in corpus_files():
        opts = options_for(path)
        key = "star" if opts.get("profile") == "star" else \
            "gb18030" if opts.get("encoding") else "epson"
        with open(path, "rb") as f:
            groups[key].append((short(path), f.read()))
    for r in generate_receipts(seed=11, count=16):      # every store twice: en de fr es zh
        name = "generated/%s" % r.name
        groups["gb18030" if r.language == "zh" else "epson"].append((name, r.stream))
        truth[name] = r.lines
    for name, stream, lines in real_receipts(step):
        groups["epson"].append((name, stream))
        truth[name] = lines
    settings = {"epson": printer_settings(), "star": printer_settings("star"),
                "gb18030": printer_settings(encoding="gb18030")}
    return {k: (settings[k], jobs) for k, jobs in groups.items()}, truth


def _exact(got, want):
    """(lines exact, lines) after collapsing runs of spaces (receipts-real's scoring), blank
    lines left out (the generated receipts' truth has none)."""
    got, want = ([_SPACES.sub(" ", line.strip()) for line in lines if line.strip()]
                 for lines in (got, want))
    return sum(1 for a, b in zip(got, want) if a == b), len(want)


def test_the_server_stores_what_tilltap_parse_prints(tmp_path):
    check_real_path(tmp_path, REAL_STEP)


@pytest.mark.soak
def test_the_server_stores_what_tilltap_parse_prints_for_all_real_receipts(tmp_path):
    check_real_path(tmp_path, 1)


def check_real_path(tmp_path, step):
    need_corpus()
    groups, truth = job_groups(step)

    async def run():
        demo = Demo(str(tmp_path), "http")
        try:
            await demo.start(tap=False)
            taps = []
            for key, (printer, jobs) in groups.items():
                for mode in ("full", "text", "fields"):
                    tap = await demo.add_tap("%s-%s" % (key, mode), printer, mode)
                    taps.append((key, tap, jobs))
            results = await asyncio.gather(*(demo.replay(jobs, tap) for _, tap, jobs in taps))
            for (key, tap, jobs), (sent, _) in zip(taps, results):
                want = len(parsed_receipts(jobs, tap.options))
                assert await demo.wait_stored(want, 120 + len(jobs), tap), (tap.device,
                                                                           tap.status())
                assert bytes(tap.printer.received) == sent, tap.device
            assert await demo.wait_extracted(60)
            with demo.engine.connect() as conn:
                for key, tap, _ in taps:      # every record says how its board parsed it
                    contexts = {json.dumps(r["printer"], sort_keys=True) for (r,) in
                                conn.execute(select(schema.receipts.c.record).where(
                                    schema.receipts.c.device_id == tap.device))}
                    assert [json.loads(c) for c in contexts] == [{
                        "profile": groups[key][0]["profile"],
                        "codepage_map": groups[key][0]["codepage_map"],
                        "encoding": groups[key][0]["encoding"] or None, "model": None,
                        "split": {"idle_ms": 1500, "on_init": False, "tear_lines": 0}}], \
                        tap.device
            return [(key, tap, jobs, stored_receipts(demo.engine, tap.device))
                    for key, tap, jobs in taps]
        finally:
            await demo.close()

    exact = {"server": [0, 0], "parse": [0, 0]}
    for key, tap, jobs, stored in asyncio.run(run()):
        parsed = parsed_receipts(jobs, tap.options)
        assert len(stored) == len(parsed), tap.device
        for (seq, view, undecodable), (name, receipt) in zip(stored, parsed):
            want = parsed_view(receipt)
            if tap.upload_mode == "fields":
                # no text leaves the board; its extractor (fields_mode.py, without codecs)
                # finds the same consumption data the server finds in the text
                want.update(lines=[], barcodes=[], codes2d=[])
                assert view == want, (tap.device, seq, name)
                continue
            assert view == want, (tap.device, seq, name)
            assert None not in view["lines"], (tap.device, name)
            escaped = sum(1 for line in want["lines"] if "\\x" in line)
            assert undecodable <= escaped, (tap.device, name)
            if name in truth:
                assert escaped == 0, (tap.device, name)
                got, total = _exact(view["lines"], truth[name])
                exact["server"][0] += got
                exact["server"][1] += total
                got, total = _exact(receipt["lines"], truth[name])
                exact["parse"][0] += got
                exact["parse"][1] += total
    assert exact["server"] == exact["parse"]
    assert exact["server"][0] >= 0.97 * exact["server"][1], exact
