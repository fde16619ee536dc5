"""Report query speed on a large analysis dataset, SQLite and PostgreSQL (target < 1 s each).

    .venv/bin/python bench/bench_reports.py            # 1,000,000 receipts
    TILLTAP_BENCH_RECEIPTS=100000 .venv/bin/python bench/bench_reports.py

Receipt fields, items and payments are generated straight into the analysis tables (bulk
inserts, no extraction): 40 stores on 40 taps over a year, 2-3 items each, 5,000 members.
PostgreSQL runs in a private schema of $TILLTAP_PG_URL and is skipped when unreachable.
Quick mode (TILLTAP_BENCH_QUICK=1): 20,000 receipts, 500 members (TILLTAP_BENCH_RECEIPTS
still overrides the receipts).
"""
import datetime as dt
import os
import random
import sys
import tempfile
import time
import uuid
from decimal import Decimal

from quick import size

from tilltap.analysis import summaries
from tilltap.analysis.reports import REPORTS, ReportQuery
from tilltap.storage import database
from tilltap.storage.schema import customers, receipt_fields, receipt_items, receipt_payments
from tilltap_host.unixport import ROOT

sys.path.insert(0, os.path.join(ROOT, "tests", "support"))  # the tests' PostgreSQL target
from dbtarget import PG_URL, pg_available  # noqa: E402

N = int(os.environ.get("TILLTAP_BENCH_RECEIPTS", size(1000000, 20000)))
CHUNK = 20000
STORES = 40
MEMBERS = size(5000, 500)
ITEMS = [("Item %03d" % i, Decimal(random.Random(i).randrange(50, 2000)) / 100)
         for i in range(300)]


def _rows(start, count, rng, now):
    """(fields, items, payments) rows for receipts start..start+count."""
    fields, items, payments = [], [], []
    first_day = dt.datetime(2026, 1, 1, 7)
    per_receipt = 365 * 24 * 60 / (N / STORES)  # minutes between a store's receipts: one year
    for n in range(start, start + count):
        store = n % STORES
        device, seq = "tap-%02d" % store, n // STORES
        picked = rng.sample(ITEMS, rng.randint(1, 3))
        total = sum(price for _, price in picked)
        refund = rng.random() < 0.01
        member = rng.randrange(MEMBERS) if rng.random() < 0.3 else None
        fields.append({
            "device_id": device, "seq": seq, "store": "Store %02d" % store,
            "receipt_no": str(seq),
            # every 1000th number is skipped: receipt_gaps has something to find
            "receipt_num": seq + seq // 1000, "total": -total if refund else total,
            # numbers rise with time, as a till prints them: a date range holds a number run
            "receipt_dt": first_day + dt.timedelta(minutes=seq * per_receipt),
            "currency": "EUR", "payment_types": "card",
            "member_id": None if member is None else str(member), "phone_key": None,
            "customer_id": None if member is None else member + 1,
            "item_count": len(picked), "refund": refund, "void": rng.random() < 0.002,
            "template": False, "extracted_at": now})
        for line, (name, price) in enumerate(picked):
            items.append({"device_id": device, "seq": seq, "line_no": line, "name": name,
                          "qty": Decimal(1), "unit_price": price, "amount": price, "sku": None})
        payments.append({"device_id": device, "seq": seq, "line_no": 0,
                         "type": rng.choice(("card", "cash")), "amount": total})
    return fields, items, payments


def load(engine):
    rng, now = random.Random(1), database.utcnow()
    with engine.begin() as conn:
        conn.execute(customers.insert(), [{"id": i + 1, "member_id": str(i), "created_at": now,
                                           "attributes": {}} for i in range(MEMBERS)])
    for start in range(0, N, CHUNK):
        fields, items, payments = _rows(start, min(CHUNK, N - start), rng, now)
        with engine.begin() as conn:
            conn.execute(receipt_fields.insert(), fields)
            conn.execute(receipt_items.insert(), items)
            conn.execute(receipt_payments.insert(), payments)
    # the report summaries, as extraction keeps them (the rows above bypass extraction)
    summaries.rebuild(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")  # planner statistics, as a running server has them


def bench(name, engine):
    started = time.perf_counter()
    load(engine)
    print("%s: loaded %d receipts (and the report summaries) in %.1f s" % (
        name, N, time.perf_counter() - started))
    march = {"start": dt.date(2026, 3, 1), "end": dt.date(2026, 3, 31)}
    queries = {"whole year": ReportQuery(),
               "one month": ReportQuery(**march),
               "one store, one month": ReportQuery(**march, store="Store 07")}
    for label, query in queries.items():
        for report, function in REPORTS.items():
            started = time.perf_counter()
            rows = function(engine, query)
            took = time.perf_counter() - started
            print("  %-7s %-22s %-18s %8.3f s %s  (%d rows)" % (
                name, label, report, took, "ok " if took < 1 else "SLOW", len(rows)))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        engine = database.make_engine("sqlite:///%s/bench.db" % tmp)
        bench("sqlite", engine)
        engine.dispose()
    if not pg_available():
        print("postgresql: skipped, not reachable at %s" % PG_URL)
        return
    schema = "bench_%s" % uuid.uuid4().hex[:8]
    engine = database.make_engine(PG_URL, schema=schema)
    try:
        bench("postgresql", engine)
    finally:
        database.drop_schema(engine, schema)
        engine.dispose()


if __name__ == "__main__":
    main()
