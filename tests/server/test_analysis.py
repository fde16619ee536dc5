"""Consumption analysis: extraction into receipt_fields/items, templates, customer links and
every report on a known dataset, against a real SQLite file and a real PostgreSQL."""
import datetime as dt
import json
import os
import time
import zlib
from decimal import Decimal

import analysis_data as data
import pytest
from corpus import CORPUS
from sqlalchemy import and_, func, select

from tilltap.accounts import devices
from tilltap.analysis import extraction as analysis
from tilltap.analysis import summaries
from tilltap.analysis.extract import add_fields
from tilltap.analysis.reports import REPORTS, ReportQuery
from tilltap.ingest.writer import Ingest, prepare
from tilltap.ocr import reader as ocr
from tilltap.storage import database, schema
from tilltap_fw import config as device_config
from tilltap_fw import escpos_parser, protocol
from tilltap_fw.receipt import Receipt, ReceiptAssembler, parse_stream
from tilltap_host.receipt_factory import generate_receipts

D = Decimal
MARCH = ReportQuery(start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31))


@pytest.fixture
def engine(db_target):
    engine = database.make_engine(db_target.url, schema=db_target.schema)
    yield engine
    engine.dispose()


@pytest.fixture
def shop(engine):
    data.load(engine)
    return engine


def _fields(engine, device, seq):
    with engine.connect() as conn:
        return conn.execute(select(schema.receipt_fields).where(
            schema.receipt_fields.c.device_id == device,
            schema.receipt_fields.c.seq == seq)).one()


def test_generated_receipts_are_stored_as_the_extractor_reads_them(engine):
    devices.add(engine, "tap-gen")
    with engine.begin() as conn:
        wanted = {}
        for seq, generated in enumerate(generate_receipts(seed=5, count=15)):
            encoding = "gb18030" if generated.language == "zh" else None
            parsed = parse_stream(generated.stream, encoding=encoding)[0][0]
            r = Receipt()
            r.lines, r.barcodes, r.codes2d = parsed["lines"], parsed["barcodes"], parsed["codes2d"]
            rec = protocol.record_from_receipt(r, "tap-gen", 1, int(time.time() * 1000), True)
            conn.execute(schema.receipts.insert().values(
                device_id="tap-gen", seq=seq, boot=1, captured_at=rec["captured_at"],
                time_synced=True, received_at=database.utcnow(), record=rec))
            wanted[seq] = (add_fields(parsed)["fields"], generated.fields)
    assert analysis.extract_pending(engine) == 15
    assert analysis.extract_pending(engine) == 0  # nothing left
    right_totals = 0
    for seq, (extracted, truth) in wanted.items():
        row = _fields(engine, "tap-gen", seq)
        assert row.store == extracted["store"] and row.receipt_no == extracted["receipt_no"]
        assert row.member_id == extracted["member_id"]
        assert row.item_count == len(extracted["items"])
        assert row.receipt_dt == dt.datetime.fromisoformat(extracted["datetime"])
        right_totals += row.total == D(truth["total"])
    assert right_totals >= 14  # the extractor's accuracy, measured in test_extract.py


def test_known_receipt_fields_items_and_customer_links(shop):
    row = _fields(shop, data.CORNER, 1)
    assert (row.store, row.receipt_no, row.receipt_num, row.total) == ("CORNER SHOP", "1001", 1001,
                                                                      D("6.20"))
    assert row.receipt_dt == dt.datetime(2026, 3, 2, 10, 15)
    assert (row.payment_types, row.member_id, row.item_count) == ("card", "11111111", 2)
    assert not row.refund and not row.void
    assert _fields(shop, data.CORNER, 4).refund and _fields(shop, data.CORNER, 5).void
    with shop.connect() as conn:
        items = conn.execute(select(schema.receipt_items).where(
            schema.receipt_items.c.device_id == data.CORNER,
            schema.receipt_items.c.seq == 1).order_by("line_no")).all()
        names = dict(conn.execute(select(schema.customers.c.id,
                                         schema.customers.c.name)).all())
    assert [(i.name, i.qty, i.unit_price, i.amount) for i in items] == [
        ("Bread", D("2"), D("2.50"), D("5.00")), ("Milk", D("1"), D("1.20"), D("1.20"))]
    assert names[_fields(shop, data.CORNER, 1).customer_id] == "Alice Baker"
    assert names[_fields(shop, data.BAKERY, 2).customer_id] == "Carol Chen"  # by phone
    assert _fields(shop, data.CORNER, 2).customer_id is None


def test_a_layout_template_overrides_and_reextract_applies_it(shop):
    template = {"fields": {"store": {"pattern": "^Receipt No: (?P<value>\\d+)"}}}
    with shop.begin() as conn:
        conn.execute(schema.layout_templates.insert().values(
            device_id=data.BAKERY, template=template, updated_at=database.utcnow()))
    seen = []
    assert analysis.reextract_all(
        shop, progress=lambda done, total: seen.append((done, total))) == 7
    assert seen[-1] == (7, 7)
    assert _fields(shop, data.BAKERY, 1).store == "501" and _fields(shop, data.BAKERY, 1).template
    assert _fields(shop, data.CORNER, 1).store == "CORNER SHOP"
    assert analysis.extract_and_store(shop, data.CORNER, 1) is True
    assert analysis.extract_and_store(shop, data.CORNER, 99) is False


def test_sales_per_day_and_hour(shop):
    rows = REPORTS["sales_by_day"](shop, MARCH)
    assert [(r["day"], r["store"], r["receipts"], r["sales"]) for r in rows] == [
        ("2026-03-02", "BAKERY", 1, D("4.50")), ("2026-03-02", "CORNER SHOP", 2, D("7.40")),
        ("2026-03-03", "BAKERY", 1, D("1.50")), ("2026-03-03", "CORNER SHOP", 2, D("1.80"))]
    hours = REPORTS["sales_by_hour"](shop, ReportQuery(store="CORNER SHOP"))
    assert [(r["hour"], r["receipts"], r["sales"]) for r in hours] == [
        (10, 2, D("9.20")), (11, 1, D("1.20")), (18, 1, D("-1.20"))]
    one_day = ReportQuery(start=dt.date(2026, 3, 3), end=dt.date(2026, 3, 3))
    assert {r["day"] for r in REPORTS["sales_by_day"](shop, one_day)} == {"2026-03-03"}


def test_basket_items_payments_refunds(shop):
    basket = {r["store"]: r for r in REPORTS["basket_size"](shop, MARCH)}
    assert basket["CORNER SHOP"]["receipts"] == 3 and basket["CORNER SHOP"]["avg_items"] == 1.33
    assert basket["CORNER SHOP"]["avg_amount"] == D("3.47")
    assert (basket["BAKERY"]["avg_items"], basket["BAKERY"]["avg_amount"]) == (1.5, D("3.00"))
    top = REPORTS["top_items"](shop, MARCH)
    assert [(r["name"], r["qty"], r["amount"], r["receipts"]) for r in top] == [
        ("Coffee", D("2"), D("6.00"), 2), ("Bread", D("2"), D("5.00"), 1),
        ("Croissant", D("2"), D("3.00"), 2), ("Milk", D("2"), D("2.40"), 2)]
    assert len(REPORTS["top_items"](shop, ReportQuery(limit=2))) == 2
    mix = {r["type"]: r for r in REPORTS["payment_mix"](shop, MARCH)}
    assert (mix["card"]["payments"], mix["card"]["amount"]) == (3, D("10.70"))
    assert (mix["cash"]["payments"], mix["cash"]["amount"]) == (3, D("4.50"))
    assert mix["card"]["share"] == round(10.70 / 15.20, 4)
    back = {r["store"]: r for r in REPORTS["refunds"](shop, MARCH)}
    assert (back["CORNER SHOP"]["receipts"], back["CORNER SHOP"]["refunds"],
            back["CORNER SHOP"]["refund_amount"],
            back["CORNER SHOP"]["voids"]) == (5, 1, D("-1.20"), 1)
    assert (back["BAKERY"]["refunds"], back["BAKERY"]["voids"]) == (0, 0)


def test_customer_reports(shop):
    spend = REPORTS["customer_spend"](shop, MARCH)
    assert [(r["name"], r["visits"], r["spend"], r["avg_basket"]) for r in spend] == [
        ("Alice Baker", 2, D("9.20"), D("4.60")), ("Bob Miller", 1, D("4.50"), D("4.50")),
        ("Carol Chen", 1, D("1.50"), D("1.50"))]
    assert REPORTS["visit_frequency"](shop, MARCH) == [{"visits": "1", "customers": 2},
                                                       {"visits": "2", "customers": 1}]
    assert REPORTS["new_vs_returning"](shop, MARCH) == [
        {"day": "2026-03-02", "new_customers": 2, "returning_customers": 0},
        {"day": "2026-03-03", "new_customers": 1, "returning_customers": 1}]
    segments = {r["name"]: r for r in REPORTS["rfm"](shop, MARCH)}
    alice = segments["Alice Baker"]
    assert (alice["recency_days"], alice["frequency"], alice["monetary"]) == (28, 2, D("9.20"))
    assert alice["f"] > segments["Bob Miller"]["f"] and alice["m"] > segments["Carol Chen"]["m"]
    assert all(r["segment"] for r in segments.values())


def test_receipts_not_printed_or_cut_short_are_kept_but_are_not_sales(shop):
    """A receipt the printer never printed (it failed mid-job) or one the tap captured only in
    part is stored, searchable and shown with its status, and no sales report counts it."""
    from tilltap.storage import receipts as stored
    from tilltap_fw.receipt import INCOMPLETE, NOT_PRINTED
    names = ("sales_by_day", "top_items", "basket_size", "payment_mix", "customer_spend",
             "visit_frequency", "refunds")
    before = {name: REPORTS[name](shop, MARCH) for name in names}
    extra = [data.record(data.CORNER, 50, "1003", "2026-03-02 12:00", [("Coffee", "3.00")],
                         "3.00", "Card", ["Member: 11111111"]),
             data.record(data.CORNER, 51, "1004", "2026-03-02 12:05", [("Bread", "2.50")],
                         "2.50", "Cash", [])]
    extra[0]["status"] = NOT_PRINTED
    extra[1].update(status=INCOMPLETE, reason="cut_in_payload")
    ingest = Ingest(shop, check_devices=True)
    try:
        payload = json.dumps({"v": 1, "device": data.CORNER, "records": extra}).encode()
        assert ingest.submit_batch(data.CORNER, payload).result(30).acked == [50, 51]
    finally:
        ingest.close()
    analysis.extract_pending(shop)
    assert {name: REPORTS[name](shop, MARCH) for name in names} == before
    summaries.rebuild(shop)
    assert {name: REPORTS[name](shop, MARCH) for name in names} == before
    found = {r["seq"]: r for r in stored.search(shop, device=data.CORNER)}
    assert (found[50]["status"], found[50]["reason"]) == (NOT_PRINTED, None)
    assert (found[51]["status"], found[51]["reason"]) == (INCOMPLETE, "cut_in_payload")
    assert found[1]["status"] == "complete"
    # the gap report counts printed receipts only: 1003 and 1004 are still missing
    assert REPORTS["receipt_gaps"](shop, MARCH) == [
        {"device_id": data.CORNER, "store": "CORNER SHOP", "after_no": 1002, "before_no": 1005,
         "missing": 2}]


def test_receipt_number_gaps(shop):
    assert REPORTS["receipt_gaps"](shop, MARCH) == [
        {"device_id": data.CORNER, "store": "CORNER SHOP", "after_no": 1002, "before_no": 1005,
         "missing": 2}]
    assert REPORTS["receipt_gaps"](shop, ReportQuery(store="BAKERY")) == []


def _reference_top_items(engine, q):
    """top_items as a plain join over every item (what the summaries must reproduce)."""
    rf, it = schema.receipt_fields, schema.receipt_items
    conds = [rf.c.void.is_(False), rf.c.refund.is_(False), it.c.name.is_not(None)]
    if q.start:
        conds.append(rf.c.receipt_dt >= dt.datetime.combine(q.start, dt.time()))
    if q.end:
        conds.append(rf.c.receipt_dt < dt.datetime.combine(
            q.end + dt.timedelta(days=1), dt.time()))
    if q.store:
        conds.append(rf.c.store == q.store)
    with engine.connect() as conn:
        rows = conn.execute(select(it.c.name, func.sum(it.c.qty), func.sum(it.c.amount),
                                   func.count())
                            .select_from(it.join(rf, and_(rf.c.device_id == it.c.device_id,
                                                          rf.c.seq == it.c.seq)))
                            .where(*conds).group_by(it.c.name)).all()
    rows = [{"name": n, "qty": D(qty).quantize(D("0.001")),
             "amount": D(amount).quantize(D("0.01")), "receipts": count}
            for n, qty, amount, count in rows]
    return sorted(rows, key=lambda r: (-r["amount"], r["name"]))[:q.limit]


def _reference_gaps(engine, q):
    """receipt_gaps by walking every receipt number in range in order."""
    rf = schema.receipt_fields
    conds = [rf.c.receipt_num.is_not(None)]
    if q.start:
        conds.append(rf.c.receipt_dt >= dt.datetime.combine(q.start, dt.time()))
    if q.end:
        conds.append(rf.c.receipt_dt < dt.datetime.combine(
            q.end + dt.timedelta(days=1), dt.time()))
    if q.store:
        conds.append(rf.c.store == q.store)
    with engine.connect() as conn:
        rows = conn.execute(select(rf.c.device_id, rf.c.store, rf.c.receipt_num)
                            .where(*conds)).all()
    numbers = {}
    for device, store, num in rows:
        numbers.setdefault((store, device), []).append(num)
    out = []
    for (store, device), nums in sorted(numbers.items()):
        nums.sort()
        out += [{"device_id": device, "store": store, "after_no": a, "before_no": b,
                 "missing": b - a - 1} for a, b in zip(nums, nums[1:]) if b - a > 1]
    return out


def _summaries(engine):
    with engine.connect() as conn:
        return (sorted(tuple(r) for r in conn.execute(select(schema.item_months))),
                sorted(repr(tuple(r)) for r in conn.execute(select(schema.receipt_num_days))))


def test_summarised_reports_match_the_receipts_over_months(shop):
    """top_items and receipt_gaps read summaries kept by extraction: over ranges cutting
    months and days, after re-extraction moves receipts between stores, and for a printer
    whose numbers restart every month (its days overlap), they give what the receipts give."""
    items = [("Tea", "2.10"), ("Cake", "3.40"), ("Soup", "4.75"), ("2 x Roll", "1.60")]
    specs = []
    for n in range(40):  # CORNER: every few days Jan-May, numbers with gaps
        day = dt.date(2026, 1, 3) + dt.timedelta(days=n * 3 + n % 2)
        no = str(2000 + n + n // 7 * 3)
        picked = [items[n % 4], items[(n + 1) % 4]]
        total = "%.2f" % sum(float(a) for _, a in picked)
        specs.append((data.CORNER, 100 + n, no, "%s 12:%02d" % (day, n), picked, total,
                      "Cash", ["VOID"] if n % 13 == 5 else []))
    for n in range(24):  # BAKERY: numbers restart on the 1st of each month
        day = dt.date(2026, 1, 2) + dt.timedelta(days=n * 5)
        no = str(1 + day.day // 3 + (n % 5 == 0))
        specs.append((data.BAKERY, 100 + n, no, "%s 08:00" % day, [items[n % 4]], items[n % 4][1],
                      "Card", []))
    ingest = Ingest(shop, check_devices=True)
    try:
        for device in (data.CORNER, data.BAKERY):
            records = [data.record(*spec) for spec in specs if spec[0] == device]
            payload = json.dumps({"v": 1, "device": device, "records": records}).encode()
            result = ingest.submit_batch(device, payload).result(30)
            assert result.acked == [r["seq"] for r in records]
    finally:
        ingest.close()
    analysis.extract_pending(shop)

    def check():
        for q in (ReportQuery(), MARCH, ReportQuery(start=dt.date(2026, 1, 20)),
                  ReportQuery(end=dt.date(2026, 3, 10)),
                  ReportQuery(start=dt.date(2026, 2, 11), end=dt.date(2026, 4, 30)),
                  ReportQuery(start=dt.date(2026, 2, 11), end=dt.date(2026, 2, 25)),
                  ReportQuery(start=dt.date(2026, 1, 1), end=dt.date(2026, 2, 28),
                              store="CORNER SHOP"),
                  ReportQuery(start=dt.date(2026, 2, 1), store="BAKERY", limit=2)):
            assert REPORTS["top_items"](shop, q) == _reference_top_items(shop, q), q
            assert REPORTS["receipt_gaps"](shop, q) == _reference_gaps(shop, q), q

    check()
    assert REPORTS["receipt_gaps"](shop, ReportQuery(store="BAKERY"))  # restarts: gaps found
    kept = _summaries(shop)
    summaries.rebuild(shop)
    assert _summaries(shop) == kept
    assert not summaries.ensure(shop)   # present: left alone
    with shop.begin() as conn:                  # a database from before the summaries
        conn.execute(schema.item_months.delete())
        conn.execute(schema.receipt_num_days.delete())
    assert summaries.ensure(shop) and _summaries(shop) == kept
    # a template moves the corner shop's receipts into another "store"; the summaries follow
    with shop.begin() as conn:
        conn.execute(schema.layout_templates.insert().values(
            device_id=data.CORNER,
            template={"fields": {"store": {"pattern": "^Date: (\\d{4}-\\d\\d)"}}},
            updated_at=database.utcnow()))
    analysis.reextract_all(shop, device_id=data.CORNER)
    assert {r["store"] for r in REPORTS["receipt_gaps"](shop, ReportQuery())} >= {"2026-03"}
    check()
    kept = _summaries(shop)
    summaries.rebuild(shop)
    assert _summaries(shop) == kept


def test_silent_printers_and_fleet(shop):
    with shop.begin() as conn:
        conn.execute(schema.telemetry.insert().values(
            device_id=data.CORNER, received_at=database.utcnow(),
            report={"spool": {"count": 3}, "dropped": 1, "firmware": "0.1.0"}))
    now = database.utcnow()
    assert [r["device_id"] for r in REPORTS["silent_printers"](shop, ReportQuery(now=now))] == [
        data.IDLE]
    later = ReportQuery(now=now + dt.timedelta(hours=48), hours=24)
    silent = {r["device_id"]: r for r in REPORTS["silent_printers"](shop, later)}
    assert set(silent) == set(data.DEVICES) and silent[data.IDLE]["hours_silent"] is None
    assert 47 < silent[data.CORNER]["hours_silent"] <= 48
    fleet = {r["device_id"]: r for r in REPORTS["fleet"](shop, ReportQuery())}
    assert (fleet[data.CORNER]["store"], fleet[data.CORNER]["receipts"],
            fleet[data.CORNER]["spool_backlog"], fleet[data.CORNER]["dropped"],
            fleet[data.CORNER]["firmware"]) == ("CORNER SHOP", 5, 3, 1, "0.1.0")
    assert fleet[data.IDLE]["receipts"] == 0 and fleet[data.IDLE]["last_receipt_at"] is None


def test_every_report_runs_on_an_empty_database(engine):
    for name, report in REPORTS.items():
        assert report(engine, MARCH) == [], name


def test_board_fields_are_stored_even_at_the_columns_limits(engine):
    """Upload mode fields: what protocol_check accepts is stored on both databases (amounts
    beyond a column become NULL, long strings are cut, card numbers masked)."""
    devices.add(engine, "tap-fields")
    r = Receipt()
    r.cut, r.end = "full", "cut"
    found = {"total": "12.3456", "subtotal": None, "currency": "EUR", "receipt_no": "4711",
             "datetime": "2026-03-01T10:15:00", "member_id": "4111111111111111",
             "payments": [{"type": "t" * 40, "amount": "12.35"}],
             "items": [{"name": "N" * 200, "qty": "500000000000", "unit_price": None,
                        "amount": "999999999999999.9"}]}
    rec = protocol.record_from_fields(r, found, "tap-fields", 1, int(time.time() * 1000), True)
    rec["seq"] = 1
    ingest = Ingest(engine, check_devices=True)
    try:
        payload = json.dumps({"v": 1, "device": "tap-fields", "records": [rec]}).encode()
        assert ingest.submit_batch("tap-fields", payload).result(30).acked == [1]
    finally:
        ingest.close()
    assert analysis.extract_pending(engine) == 1
    row = _fields(engine, "tap-fields", 1)
    assert row.total == D("12.35") or row.total == D("12.346")   # the column's scale
    assert row.receipt_dt == dt.datetime(2026, 3, 1, 10, 15)
    assert row.member_id == "************1111" and not row.template
    with engine.connect() as conn:
        item = conn.execute(select(schema.receipt_items)).one()
        payment = conn.execute(select(schema.receipt_payments)).one()
    assert item.qty is None and item.amount is None and len(item.name) == 200
    assert payment.type == "t" * 16 and payment.amount == D("12.35")


def test_raster_only_receipts_are_read_by_ocr_once(engine):
    """A driver's raster receipt (raster-2.bin), its record built on CPython with the tap's
    capture code (image metadata, raw bytes deflated because upload.images is on), ingested,
    then extracted: its fields come from OCR, which reextract does not run again."""
    path = os.path.join(CORPUS, "real", "taoyuan__npos", "raster-2.bin")
    if not os.path.exists(path):
        pytest.skip("ESC/POS corpus not found at %s" % CORPUS)
    with open(path, "rb") as f:
        raw = f.read()
    parser = escpos_parser.Parser(encoding="gb18030")
    (captured,) = ReceiptAssembler().add(parser.feed(raw) + parser.close())
    assert captured.images and captured.lines == ["T"]   # the driver prints one stray letter
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    rec = protocol.record_from_receipt(captured, "tap-raster", 1, int(time.time() * 1000), True,
                                       raw=raw,
                                       raw_deflated=deflate.compress(raw) + deflate.flush(),
                                       images=True)
    rec["seq"] = 7
    rows, result = prepare("tap-raster", json.dumps({"v": 1, "device": "tap-raster",
                                                     "records": [rec]}).encode(),
                           int(time.time() * 1000))
    assert result.error is None and rows[0]["raw_encoding"] == "deflate"
    devices.add(engine, "tap-raster")
    with engine.begin() as conn:
        conn.execute(schema.receipts.insert(),
                     [dict(r, received_at=database.utcnow()) for r in rows])
    assert analysis.extract_pending(engine) == 1
    row = _fields(engine, "tap-raster", 7)
    assert (row.total, row.member_id, row.payment_types) == (D("242.00"), "10001703", "cash")
    with engine.connect() as conn:
        (read,) = conn.execute(select(schema.receipt_ocr)).all()
    assert any("应收" in line and "242.00" in line for line in read.lines)
    assert analysis.reextract_all(engine) == 1
    with engine.connect() as conn:
        assert conn.execute(select(schema.receipt_ocr)).all() == [read]  # not read again
    assert _fields(engine, "tap-raster", 7).total == D("242.00")


def test_raw_bytes_are_parsed_again_with_the_printer_context_of_their_record(engine, monkeypatch):
    """A Star printer's raster receipt is an image only when read as Star Line Mode: the server
    re-parses the stored raw bytes with the record's printer context, not Parser() defaults."""
    path = os.path.join(CORPUS, "real", "eljojo__estrella", "ripple_raster.bin")
    if not os.path.exists(path):
        pytest.skip("ESC/POS corpus not found at %s" % CORPUS)
    with open(path, "rb") as f:
        raw = f.read()
    cfg = device_config.validate({"printer": {"profile": "star", "codepage_map": "star"}})
    context = protocol.printer_context(cfg["printer"], cfg["split"])
    parser = escpos_parser.Parser(**protocol.parser_options(context))
    (captured,) = ReceiptAssembler().add(parser.feed(raw) + parser.close())
    records = []
    for seq, printer in ((1, context), (2, None)):
        rec = protocol.record_from_receipt(captured, "tap-star", 1, int(time.time() * 1000),
                                           True, raw=raw, images=True, seq=seq, printer=printer)
        records.append(rec)
    rows, result = prepare("tap-star", json.dumps({"v": 1, "device": "tap-star",
                                                   "records": records}).encode(),
                           int(time.time() * 1000))
    assert result.error is None and rows[0]["record"]["printer"]["profile"] == "star"
    with engine.begin() as conn:
        conn.execute(schema.receipts.insert(),
                     [dict(r, received_at=database.utcnow()) for r in rows])
    monkeypatch.setattr(ocr, "ocr_image", lambda page, *args: ["PAGE %dx%d" % page.size])
    read = analysis.ocr_lines(engine, [(r["device_id"], r["seq"], r["record"]) for r in rows])
    assert read == {("tap-star", 1): ["PAGE 576x500"], ("tap-star", 2): []}
