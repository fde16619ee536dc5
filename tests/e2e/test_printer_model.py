"""A printer model on the real path: the firmware on the unix port runs with printer.model set,
reads the model's code pages (escpos-printer-db), splits copies printed back to back on a
printer without a cutter, and every record says which model it was parsed for.

The jobs are python-escpos output for that model (its profile picks the ESC t number and, with
no cutter, feeds instead of cutting): a Latvian receipt in CP1257, which the POS-5890 numbers 25
and the Epson map does not have (read as cp437 there, € as Ç).
"""
import asyncio
import json

from escpos.printer import Dummy
from sqlalchemy import select

from tilltap.storage import schema
from tilltap_host.demo import Demo, parsed_receipts, parsed_view, printer_settings, stored_receipts

MODEL = "POS-5890"


def latvian_receipt(model=MODEL):
    """One receipt as python-escpos prints it for the model: ESC @, ESC t 25 (CP1257), text,
    and cut(), which on a printer without a cutter is a feed of 6 lines (ESC d 6)."""
    p = Dummy(profile=model)
    p.hw("INIT")
    p.charcode("CP1257")
    p.text("VEIKALS RĪGA\nKafija          2,50 €\nMaize           1,20 €\n"
           "TOTAL           3,70 €\n")
    p.cut()
    return p.output


def test_the_models_code_pages_and_tear_off_split_on_the_real_path(tmp_path):
    copy = latvian_receipt()
    assert b"\x1bt\x19" in copy and copy.endswith(b"\x1bd\x06")
    jobs = [("two-copies", copy + copy), ("one", copy)]

    async def run():
        demo = Demo(str(tmp_path), "http")
        try:
            await demo.start(tap=False)
            taps = [await demo.add_tap("model-%s" % mode, printer_settings(model=MODEL), mode)
                    for mode in ("full", "text")]
            # the same printer set up without its model: the Epson map has no page 25
            unset = await demo.add_tap("no-model", printer_settings(), "text")
            results = await asyncio.gather(*(demo.replay(jobs, tap) for tap in taps + [unset]))
            for tap, (sent, _) in zip(taps + [unset], results):
                assert await demo.wait_stored(3 if tap in taps else 2, 120, tap), tap.status()
                assert bytes(tap.printer.received) == sent
            assert await demo.wait_extracted(60)
            # the board says so: its status (and telemetry) count the pages its map lacks
            assert unset.status()["printer"]["unknown_codepages"] == 3
            assert taps[0].status()["printer"]["unknown_codepages"] == 0
            assert taps[0].status()["printer"]["tear_splits"] == 1
            assert [view["lines"][1] for _, view, _ in stored_receipts(
                demo.engine, unset.device)] == ["Kafija          2,50 Ç"] * 2
            out = []
            with demo.engine.connect() as conn:
                for tap in taps:
                    records = [r for (r,) in conn.execute(
                        select(schema.receipts.c.record)
                        .where(schema.receipts.c.device_id == tap.device)
                        .order_by(schema.receipts.c.seq))]
                    out.append((tap, records, stored_receipts(demo.engine, tap.device)))
            return out
        finally:
            await demo.close()

    for tap, records, stored in asyncio.run(run()):
        # the copies printed back to back are two receipts, the first ended at the tear-off
        assert [r["end"] for r in records] == ["tear", "end", "end"], tap.device
        assert {json.dumps(r["printer"], sort_keys=True) for r in records} == {json.dumps({
            "profile": "epson", "codepage_map": "epson", "encoding": None, "model": MODEL,
            "split": {"idle_ms": 1500, "on_init": False, "tear_lines": 5}}, sort_keys=True)}
        parsed = parsed_receipts(jobs, tap.options)
        assert [parsed_view(r) for _, r in parsed] == [view for _, view, _ in stored]
        for _, view, undecodable in stored:
            assert view["lines"] == ["VEIKALS RĪGA", "Kafija          2,50 €",
                                     "Maize           1,20 €", "TOTAL           3,70 €"]
            assert view["total"] == "3.70" and undecodable == 0
