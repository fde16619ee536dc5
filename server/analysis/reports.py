"""Report queries over the analysis tables: each returns a list of dict rows (CSV-ready).

    rows = REPORTS["sales_by_day"](engine, ReportQuery(start=date(2026, 3, 1), store="FRESHWAY"))

Written as SQLAlchemy Core that runs on SQLite and PostgreSQL; the only dialect-specific SQL is
date bucketing (_day, _hour). Dates are receipt_dt, the local time printed on the receipt.
Sales exclude voided receipts; refunds count with their (negative) totals. Money is Decimal with
two places, so JSON and CSV show what the till printed.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import (
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    or_,
    select,
    true,
    type_coerce,
    union_all,
)

from tilltap.ingest.text import clean_value
from tilltap.storage import schema
from tilltap.storage.schema import (
    customers,
    item_months,
    receipt_fields,
    receipt_items,
    receipt_num_days,
    receipt_payments,
)
from tilltap_fw.receipt import COMPLETE

rf = receipt_fields
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class ReportQuery:
    """What every report is asked: a date range (inclusive days), a store, and the knobs of
    the reports that have one."""

    start: dt.date | None = None
    end: dt.date | None = None
    store: str | None = None
    limit: int = 20          # top_items, customer_spend
    hours: int = 24          # silent_printers: silent for longer than this
    now: dt.datetime | None = None  # silent_printers, rfm; default: now (UTC)

    def when(self):
        return self.now or dt.datetime.now(dt.timezone.utc)


def _day(engine, column):
    """'YYYY-MM-DD' of a timestamp column, the same text on both databases."""
    if engine.dialect.name == "postgresql":
        return func.to_char(column, "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)


def _hour(engine, column):
    if engine.dialect.name == "postgresql":
        return cast(func.extract("hour", column), Integer)
    return cast(func.strftime("%H", column), Integer)


def _where(q, sales=True):
    """The filter of q on receipt_fields; sales=True also drops voided receipts."""
    conds = []
    if q.start is not None:
        conds.append(rf.c.receipt_dt >= dt.datetime.combine(q.start, dt.time()))
    if q.end is not None:
        conds.append(rf.c.receipt_dt < dt.datetime.combine(
            q.end + dt.timedelta(days=1), dt.time()))
    if q.store is not None:
        conds.append(rf.c.store == q.store)
    if sales:
        conds.append(rf.c.void.is_(False))
    conds.append(rf.c.status == COMPLETE)   # not printed or incomplete: not a sale
    return and_(true(), *conds)


def _money(value):
    # SQLite sums in floating point: round back to cents.
    return None if value is None else Decimal(value).quantize(_CENT)


def _fetch(engine, query, money=()):
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    for row in rows:
        for name in money:
            row[name] = _money(row[name])
    return rows


def sales_by_day(engine, q):
    """Per day and store: receipts and sales."""
    day = _day(engine, rf.c.receipt_dt).label("day")
    return _fetch(engine, select(day, rf.c.store, func.count().label("receipts"),
                                 func.sum(rf.c.total).label("sales"))
                  .where(_where(q), rf.c.receipt_dt.is_not(None))
                  .group_by(day, rf.c.store).order_by(day, rf.c.store), money=("sales",))


def sales_by_hour(engine, q):
    """Per hour of the day (0-23) and store: receipts and sales, over the whole range."""
    hour = _hour(engine, rf.c.receipt_dt).label("hour")
    return _fetch(engine, select(hour, rf.c.store, func.count().label("receipts"),
                                 func.sum(rf.c.total).label("sales"))
                  .where(_where(q), rf.c.receipt_dt.is_not(None))
                  .group_by(hour, rf.c.store).order_by(hour, rf.c.store), money=("sales",))


def basket_size(engine, q):
    """Per store: receipts, average items per receipt and average receipt total."""
    rows = _fetch(engine, select(rf.c.store, func.count().label("receipts"),
                                 func.avg(rf.c.item_count).label("avg_items"),
                                 func.avg(rf.c.total).label("avg_amount"))
                  .where(_where(q), rf.c.refund.is_(False))
                  .group_by(rf.c.store).order_by(rf.c.store), money=("avg_amount",))
    for row in rows:
        row["avg_items"] = round(float(row["avg_items"] or 0), 2)
    return rows


def _month_start(day):
    return dt.datetime(day.year, day.month, 1)


def _next_month(when):
    return (when + dt.timedelta(days=32)).replace(day=1)


def _full_months(q):
    """(first, after_last): the whole months of q's range as datetimes (None: open end), or
    None when the range holds no whole month."""
    first = None if q.start is None else (
        _month_start(q.start) if q.start.day == 1 else _next_month(_month_start(q.start)))
    after = None
    if q.end is not None:
        after = _month_start(q.end + dt.timedelta(days=1))  # end is the month's last day
    if first is not None and after is not None and first >= after:
        return None
    return first, after


def _item_lines(q, start, end):
    """Per item name: qty, amount, lines of sales receipts in [start, end) (datetimes)."""
    it = receipt_items
    conds = [rf.c.void.is_(False), rf.c.refund.is_(False), rf.c.status == COMPLETE,
             it.c.name.is_not(None),
             rf.c.receipt_dt >= start, rf.c.receipt_dt < end]
    if q.store is not None:
        conds.append(rf.c.store == q.store)
    return (select(it.c.name, func.sum(it.c.qty).label("qty"),
                   func.sum(it.c.amount).label("amount"), func.count().label("lines"))
            .select_from(it.join(rf, and_(rf.c.device_id == it.c.device_id, rf.c.seq == it.c.seq)))
            .where(*conds).group_by(it.c.name))


def top_items(engine, q):
    """The q.limit items with the highest sales: quantity, amount, receipts they are on.

    Whole months come from item_months; the days before and after them from the items."""
    it, im = receipt_items, item_months
    months = _full_months(q)
    if months is None:  # a range inside one month or two: straight from the items
        start = dt.datetime.combine(q.start, dt.time())
        end = dt.datetime.combine(q.end + dt.timedelta(days=1), dt.time())
        parts = [_item_lines(q, start, end)]
    else:
        first, after = months
        conds = []
        if first is not None:
            conds.append(im.c.month >= first.strftime("%Y-%m"))
        if after is not None:
            conds.append(im.c.month < after.strftime("%Y-%m"))
        if q.start is not None or q.end is not None:
            conds.append(im.c.month != "")  # receipts without a date are in no range
        if q.store is not None:
            conds.append(im.c.store == q.store)
        parts = [select(im.c.name, im.c.qty, im.c.amount, im.c.lines).where(*conds)]
        if q.start is not None and dt.datetime.combine(q.start, dt.time()) < first:
            parts.append(_item_lines(q, dt.datetime.combine(q.start, dt.time()), first))
        if q.end is not None:
            end = dt.datetime.combine(q.end + dt.timedelta(days=1), dt.time())
            if after < end:
                parts.append(_item_lines(q, after, end))
    both = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    amount = func.sum(both.c.amount).label("amount")
    return _fetch(engine, select(both.c.name,
                                 type_coerce(func.sum(both.c.qty), it.c.qty.type).label("qty"),
                                 type_coerce(amount, it.c.amount.type).label("amount"),
                                 func.sum(both.c.lines).label("receipts"))
                  .group_by(both.c.name).order_by(amount.desc(), both.c.name).limit(q.limit),
                  money=("amount",))


def payment_mix(engine, q):
    """Per payment type: payments, amount and share of the amount paid (0..1)."""
    pay = receipt_payments
    rows = _fetch(engine, select(pay.c.type, func.count().label("payments"),
                                 func.sum(pay.c.amount).label("amount"))
                  .select_from(pay.join(rf, and_(rf.c.device_id == pay.c.device_id,
                                                 rf.c.seq == pay.c.seq)))
                  .where(_where(q)).group_by(pay.c.type).order_by(pay.c.type),
                  money=("amount",))
    paid = sum(r["amount"] or 0 for r in rows)
    for row in rows:
        row["share"] = round(float((row["amount"] or 0) / paid), 4) if paid else 0.0
    return rows


def refunds(engine, q):
    """Per store: receipts, refunds and their amount, voided receipts."""
    return _fetch(engine, select(
        rf.c.store, func.count().label("receipts"),
        func.sum(case((rf.c.refund, 1), else_=0)).label("refunds"),
        func.coalesce(func.sum(case((rf.c.refund, rf.c.total))), 0).label("refund_amount"),
        func.sum(case((rf.c.void, 1), else_=0)).label("voids"))
        .where(_where(q, sales=False)).group_by(rf.c.store).order_by(rf.c.store),
        money=("refund_amount",))


def _per_customer(q):
    """Subquery: per linked customer in range, visits, spend, first and last visit."""
    return (select(rf.c.customer_id, func.count().label("visits"),
                   func.sum(rf.c.total).label("spend"),
                   func.min(rf.c.receipt_dt).label("first_visit"),
                   func.max(rf.c.receipt_dt).label("last_visit"))
            .where(_where(q), rf.c.customer_id.is_not(None)).group_by(rf.c.customer_id))


def customer_spend(engine, q):
    """The q.limit customers who spent most: visits, spend, average basket, first/last visit."""
    per = _per_customer(q).subquery()
    rows = _fetch(engine, select(customers.c.id.label("customer_id"), customers.c.member_id,
                                 customers.c.name, per.c.visits, per.c.spend,
                                 per.c.first_visit, per.c.last_visit)
                  .select_from(per.join(customers, customers.c.id == per.c.customer_id))
                  .order_by(per.c.spend.desc(), customers.c.id).limit(q.limit),
                  money=("spend",))
    for row in rows:
        row["avg_basket"] = (_money(row["spend"] / row["visits"]) if row["spend"] is not None
                             else None)
    return rows


def visit_frequency(engine, q):
    """How many customers came 1, 2, 3, 4 and 5+ times in the range."""
    per = _per_customer(q).subquery()
    bucket = case((per.c.visits >= 5, "5+"), else_=cast(per.c.visits, String(4))).label("visits")
    return _fetch(engine, select(bucket, func.count().label("customers"))
                  .group_by(bucket).order_by(bucket))


# RFM: recency, frequency, monetary value scored 1 (low) .. 5 (high) by quintile among the
# customers in range; the segment names follow the common RFM grid.
_SEGMENTS = (
    ("champions", lambda r, f: r >= 4 and f >= 4),
    ("loyal", lambda r, f: r >= 3 and f >= 4),
    ("new", lambda r, f: r >= 4 and f <= 1),
    ("promising", lambda r, f: r >= 4),
    ("need attention", lambda r, f: r == 3),
    ("at risk", lambda r, f: r <= 2 and f >= 3),
    ("lost", lambda r, f: True),
)


def _quintiles(values, reverse=False):
    """Score 1..5 per value by rank (ties share the lower rank)."""
    ordered = sorted(values, reverse=reverse)
    n = len(ordered)
    first: dict = {}
    for i, v in enumerate(ordered):
        first.setdefault(v, i)
    return [1 + first[v] * 5 // n for v in values]


def rfm(engine, q):
    """Per customer in range: recency in days (to q.end or now), frequency, monetary, the three
    scores and the segment."""
    rows = customer_spend(engine, ReportQuery(q.start, q.end, q.store, limit=10 ** 9))
    if not rows:
        return []
    until = (dt.datetime.combine(q.end + dt.timedelta(days=1), dt.time())
             if q.end else q.when().replace(tzinfo=None))
    out = []
    recency = [(until - r["last_visit"]).days for r in rows]
    # fewer days since the last visit is better: rank descending so recent scores high
    r_scores = _quintiles(recency, reverse=True)
    f_scores = _quintiles([r["visits"] for r in rows])
    m_scores = _quintiles([r["spend"] or 0 for r in rows])
    for row, days, r, f, m in zip(rows, recency, r_scores, f_scores, m_scores):
        segment = next(name for name, test in _SEGMENTS if test(r, f))
        out.append({"customer_id": row["customer_id"], "member_id": row["member_id"],
                    "name": row["name"], "recency_days": days, "frequency": row["visits"],
                    "monetary": row["spend"], "r": r, "f": f, "m": m, "segment": segment})
    return out


def new_vs_returning(engine, q):
    """Per day: customers on their first visit ever and customers who came before."""
    first = (select(rf.c.customer_id, func.min(rf.c.receipt_dt).label("first_dt"))
             .where(rf.c.customer_id.is_not(None), rf.c.void.is_(False),
                    rf.c.status == COMPLETE)
             .group_by(rf.c.customer_id).subquery())
    day = _day(engine, rf.c.receipt_dt)
    visits = (select(day.label("day"), rf.c.customer_id,
                     func.max(case((_day(engine, first.c.first_dt) == day, 1), else_=0))
                     .label("is_new"))
              .select_from(rf.join(first, first.c.customer_id == rf.c.customer_id))
              .where(_where(q)).group_by(day, rf.c.customer_id).subquery())
    return _fetch(engine, select(visits.c.day,
                                 func.sum(visits.c.is_new).label("new_customers"),
                                 func.sum(1 - visits.c.is_new).label("returning_customers"))
                  .group_by(visits.c.day).order_by(visits.c.day))


def _gaps_by_window(engine, q, partitions):
    """receipt_gaps rows straight from receipt_fields, for the (device_id, store) partitions."""
    prev = func.lag(rf.c.receipt_num).over(partition_by=(rf.c.device_id, rf.c.store),
                                           order_by=rf.c.receipt_num)
    which = or_(*(and_(rf.c.device_id == d, rf.c.store.is_(None) if s is None else rf.c.store == s)
                  for d, s in partitions))
    ordered = (select(rf.c.device_id, rf.c.store, rf.c.receipt_num, prev.label("prev_num"))
               .where(_where(q, sales=False), rf.c.receipt_num.is_not(None), which).subquery())
    return _fetch(engine, select(ordered.c.device_id, ordered.c.store,
                                 ordered.c.prev_num.label("after_no"),
                                 ordered.c.receipt_num.label("before_no"),
                                 (ordered.c.receipt_num - ordered.c.prev_num - 1).label("missing"))
                  .where(ordered.c.receipt_num - ordered.c.prev_num > 1)
                  .order_by(ordered.c.prev_num))


def receipt_gaps(engine, q):
    """Missing receipt numbers per printer and store: runs of numbers never seen between two
    consecutive captured receipts (unreported sales, or a tap that was unplugged).

    From receipt_num_days: a printer's days in range, ordered by number, chain into one number
    sequence when no day's numbers reach into the next day's; the gaps are then each day's own
    and those between days. A printer whose days overlap (numbers restarting) is read from
    receipt_fields."""
    nd = receipt_num_days
    conds = []
    if q.start is not None:
        conds.append(nd.c.day >= q.start.isoformat())
    if q.end is not None:
        conds.append(nd.c.day <= q.end.isoformat())
    if q.start is not None or q.end is not None:
        conds.append(nd.c.day != "")
    if q.store is not None:
        conds.append(nd.c.store == q.store)
    store = func.nullif(nd.c.store, "")  # the order receipt_fields' NULL store sorts in
    query = (select(nd.c.device_id, store.label("store"), nd.c.min_num, nd.c.max_num, nd.c.gaps)
             .where(*conds).order_by(store, nd.c.device_id))
    with engine.connect() as conn:
        days = conn.execute(query).all()
    partitions: dict[tuple, list] = {}
    for row in days:
        partitions.setdefault((row.device_id, row.store), []).append(row)
    out = []
    for (device_id, store_name), rows in partitions.items():
        rows.sort(key=lambda r: (r.min_num, r.max_num))
        if any(b.min_num < a.max_num for a, b in zip(rows, rows[1:])):
            out += _gaps_by_window(engine, q, [(device_id, store_name)])
            continue
        found = []
        for n, row in enumerate(rows):
            if n and row.min_num - rows[n - 1].max_num > 1:
                found.append((rows[n - 1].max_num, row.min_num))
            found += [tuple(g) for g in row.gaps]
        found.sort()
        out += [{"device_id": device_id, "store": store_name, "after_no": a, "before_no": b,
                 "missing": b - a - 1} for a, b in found]
    return out


def silent_printers(engine, q):
    """Registered taps whose last receipt arrived more than q.hours ago (or never)."""
    last = (select(schema.receipts.c.device_id,
                   func.max(schema.receipts.c.received_at).label("last_at"))
            .group_by(schema.receipts.c.device_id).subquery())
    rows = _fetch(engine, select(schema.devices.c.id.label("device_id"),
                                 last.c.last_at.label("last_receipt_at"))
                  .select_from(schema.devices.outerjoin(last,
                                                        last.c.device_id == schema.devices.c.id))
                  .where(schema.devices.c.role == "device", schema.devices.c.revoked_at.is_(None))
                  .order_by(schema.devices.c.id))
    now = q.when()
    cutoff = now - dt.timedelta(hours=q.hours)
    out = []
    for row in rows:
        last_at = _aware(row["last_receipt_at"])
        if last_at is None or last_at < cutoff:
            silent = None if last_at is None else round((now - last_at).total_seconds() / 3600, 1)
            out.append({"device_id": row["device_id"], "last_receipt_at": last_at,
                        "hours_silent": silent})
    return out


def _aware(value):
    # SQLite hands DateTime(timezone=True) back naive; it was stored as UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def fleet(engine, q):
    """Every registered tap: store, last receipt, last telemetry and what it reported (spool
    backlog, dropped receipts, records the server refused and the tap keeps set aside, firmware,
    printer state), whether an operator's retry of the refused records is under way, and what
    the server made of its data: text_replaced (NUL and lone surrogates read as U+FFFD) and
    extraction_errors (receipts the extractor failed on and skips)."""
    text = schema.receipt_text
    last = (select(schema.receipts.c.device_id,
                   func.max(schema.receipts.c.received_at).label("last_at"),
                   func.count().label("receipts"))
            .group_by(schema.receipts.c.device_id).subquery())
    store = (select(rf.c.device_id, func.max(rf.c.store).label("store"))
             .group_by(rf.c.device_id).subquery())
    replaced = (select(text.c.device_id, func.sum(text.c.replaced).label("replaced"))
                .where(text.c.replaced > 0).group_by(text.c.device_id).subquery())
    failed = (select(schema.extraction_errors.c.device_id, func.count().label("failed"))
              .group_by(schema.extraction_errors.c.device_id).subquery())
    tel = schema.telemetry
    req = schema.device_requests
    device = schema.devices.c.id
    query = (select(device.label("device_id"), schema.devices.c.revoked_at,
                    store.c.store, last.c.receipts, last.c.last_at,
                    tel.c.received_at.label("telemetry_at"), tel.c.report,
                    replaced.c.replaced, failed.c.failed, req.c.retry_refused, req.c.retry_done)
             .select_from(schema.devices.outerjoin(last, last.c.device_id == device)
                          .outerjoin(store, store.c.device_id == device)
                          .outerjoin(tel, tel.c.device_id == device)
                          .outerjoin(replaced, replaced.c.device_id == device)
                          .outerjoin(failed, failed.c.device_id == device)
                          .outerjoin(req, req.c.device_id == device))
             .where(schema.devices.c.role == "device").order_by(device))
    out = []
    for row in _fetch(engine, query):
        # as the device sent it: its strings cleaned for a JSON answer
        report = clean_value(row.pop("report") or {})
        spool = report.get("spool") or {}
        asked, done = row.pop("retry_refused"), row.pop("retry_done")
        out.append(dict(row, receipts=row["receipts"] or 0,
                        text_replaced=int(row.pop("replaced") or 0),
                        extraction_errors=row.pop("failed") or 0,
                        refused=spool.get("refused"), retry_pending=asked != done,
                        last_receipt_at=_aware(row.pop("last_at")),
                        telemetry_at=_aware(row["telemetry_at"]), spool_backlog=spool.get("count"),
                        dropped=report.get("dropped"), firmware=report.get("firmware"),
                        printer=report.get("printer"), uplink=report.get("uplink")))
    return out


REPORTS = {
    "sales_by_day": sales_by_day,
    "sales_by_hour": sales_by_hour,
    "basket_size": basket_size,
    "top_items": top_items,
    "payment_mix": payment_mix,
    "refunds": refunds,
    "customer_spend": customer_spend,
    "visit_frequency": visit_frequency,
    "rfm": rfm,
    "new_vs_returning": new_vs_returning,
    "receipt_gaps": receipt_gaps,
    "silent_printers": silent_printers,
    "fleet": fleet,
}
