"""Report summaries: per month and store the items sold (item_months), per printer, store and
day the receipt-number range and its gaps (receipt_num_days). Derived from receipt_fields and
receipt_items: extraction updates the groups a batch touches (update), `tilltap reextract`
rebuilds everything (rebuild), `tilltap serve` fills them for a database from before them
(ensure).
"""
import datetime as dt
from decimal import Decimal

from sqlalchemy import and_, delete, func, select

from tilltap.storage.schema import item_months, receipt_fields, receipt_items, receipt_num_days
from tilltap_fw.receipt import COMPLETE


def _month_key(when):
    return when.strftime("%Y-%m") if when is not None else ""


def _day_key(when):
    return when.strftime("%Y-%m-%d") if when is not None else ""


def _dt_range(key, months):
    """The receipt_dt condition of a day or month key ('' = no date)."""
    column = receipt_fields.c.receipt_dt
    if not key:
        return column.is_(None)
    if months:
        start = dt.datetime.strptime(key, "%Y-%m")
        end = (start + dt.timedelta(days=32)).replace(day=1)
    else:
        start = dt.datetime.strptime(key, "%Y-%m-%d")
        end = start + dt.timedelta(days=1)
    return and_(column >= start, column < end)


def _store_is(store):
    return receipt_fields.c.store.is_(None) if store is None else receipt_fields.c.store == store


def _num_day_row(key, nums):
    """The receipt_num_days row of key (device_id, store, day) and its receipt numbers."""
    device_id, store, day = key
    nums.sort()
    gaps = [[a, b] for a, b in zip(nums, nums[1:]) if b - a > 1]
    return {"device_id": device_id, "store": store or "", "day": day, "min_num": nums[0],
            "max_num": nums[-1], "gaps": gaps}


def _item_month_rows(month, store, lines):
    """item_months rows from (name, qty, amount) item lines of one month and store."""
    per: dict[str, dict] = {}
    for name, qty, amount in lines:
        row = per.setdefault(name, {"month": month, "store": store or "", "name": name,
                                    "qty": None, "amount": None, "lines": 0})
        row["lines"] += 1
        if qty is not None:
            row["qty"] = (row["qty"] or 0) + Decimal(qty)
        if amount is not None:
            row["amount"] = (row["amount"] or 0) + Decimal(amount)
    return list(per.values())


def update(conn, groups):
    """Recomputes the summary rows of the (device_id, store, receipt_dt) groups touched."""
    rf, it = receipt_fields, receipt_items
    days = {(d, s, _day_key(when)) for d, s, when in groups}
    months = {(s, _month_key(when)) for _, s, when in groups}
    for device_id, store, day in sorted(days, key=repr):
        nums = list(conn.execute(select(rf.c.receipt_num).where(
            rf.c.device_id == device_id, _store_is(store), _dt_range(day, False),
            rf.c.receipt_num.is_not(None), rf.c.status == COMPLETE)).scalars())
        conn.execute(delete(receipt_num_days).where(
            receipt_num_days.c.device_id == device_id, receipt_num_days.c.store == (store or ""),
            receipt_num_days.c.day == day))
        if nums:
            conn.execute(receipt_num_days.insert(), [_num_day_row((device_id, store, day), nums)])
    for store, month in sorted(months, key=repr):
        lines = conn.execute(
            select(it.c.name, it.c.qty, it.c.amount)
            .select_from(it.join(rf, and_(rf.c.device_id == it.c.device_id, rf.c.seq == it.c.seq)))
            .where(_store_is(store), _dt_range(month, True), rf.c.void.is_(False),
                   rf.c.refund.is_(False), rf.c.status == COMPLETE,
                   it.c.name.is_not(None))).all()
        conn.execute(delete(item_months).where(item_months.c.store == (store or ""),
                                               item_months.c.month == month))
        rows = _item_month_rows(month, store, lines)
        if rows:
            conn.execute(item_months.insert(), rows)


def _insert_chunked(conn, table, rows, size=5000):
    for start in range(0, len(rows), size):
        conn.execute(table.insert(), rows[start:start + size])


def rebuild(engine):
    """Recomputes the report summaries from receipt_fields/receipt_items (after loading the
    analysis tables by other means, or on a database from before the summaries)."""
    rf, it = receipt_fields, receipt_items
    if engine.dialect.name == "postgresql":
        month = func.to_char(rf.c.receipt_dt, "YYYY-MM")
    else:
        month = func.strftime("%Y-%m", rf.c.receipt_dt)
    with engine.begin() as conn:
        conn.execute(delete(receipt_num_days))
        conn.execute(delete(item_months))
        # streamed in printer/store/date order, one day's numbers in memory at a time
        query = (select(rf.c.device_id, rf.c.store, rf.c.receipt_dt, rf.c.receipt_num)
                 .where(rf.c.receipt_num.is_not(None), rf.c.status == COMPLETE)
                 .order_by(rf.c.device_id, rf.c.store, rf.c.receipt_dt))
        rows: list[dict] = []
        group = None  # (device_id, store, day) of nums
        nums: list[int] = []
        for device_id, store, when, num in conn.execute(
                query.execution_options(stream_results=True, yield_per=10000)):
            key = (device_id, store, _day_key(when))
            if key != group:
                if nums:
                    rows.append(_num_day_row(group, nums))
                group, nums = key, []
            nums.append(num)
        if nums:
            rows.append(_num_day_row(group, nums))
        _insert_chunked(conn, receipt_num_days, rows)
        lines = (select(rf.c.store, month.label("month"), it.c.name, func.sum(it.c.qty),
                        func.sum(it.c.amount), func.count())
                 .select_from(it.join(rf, and_(rf.c.device_id == it.c.device_id,
                                               rf.c.seq == it.c.seq)))
                 .where(rf.c.void.is_(False), rf.c.refund.is_(False), rf.c.status == COMPLETE,
                        it.c.name.is_not(None))
                 .group_by(rf.c.store, month, it.c.name))
        rows = [{"month": m or "", "store": store or "", "name": name,
                 # SQLite sums in floating point: back to the columns' places
                 "qty": None if qty is None else Decimal(qty).quantize(Decimal("0.001")),
                 "amount": None if amount is None else Decimal(amount).quantize(Decimal("0.01")),
                 "lines": count}
                for store, m, name, qty, amount, count in conn.execute(lines)]
        _insert_chunked(conn, item_months, rows)


def ensure(engine):
    """Fills the report summaries of a database from before they existed (analysis rows, empty
    summaries); True if it had to. `tilltap serve` runs it at start."""
    with engine.connect() as conn:
        fields_exist = conn.execute(select(receipt_fields.c.seq).limit(1)).first() is not None
        summaries_exist = any(conn.execute(select(func.count()).select_from(t)).scalar()
                              for t in (item_months, receipt_num_days))
    if not fields_exist or summaries_exist:
        return False
    rebuild(engine)
    return True
