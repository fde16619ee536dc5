"""Queries on stored receipts: their text, the search operators run, one receipt in full."""
import datetime as dt

from sqlalchemy import and_, exists, func, or_, select, tuple_

from tilltap.ingest.text import clean_value, record_text
from tilltap.storage.schema import (
    extraction_errors,
    receipt_fields,
    receipt_items,
    receipt_ocr,
    receipt_payments,
    receipt_text,
    receipts,
)
from tilltap_fw.receipt import COMPLETE


def stored_text(conn, keys):
    """{(device_id, seq): (record, text lines)} of stored receipts: the lines as decoded at
    ingest (receipt_text); a receipt stored before that (its migration not run yet) is decoded
    here, the same way."""
    r, t = receipts, receipt_text
    rows = conn.execute(select(r.c.device_id, r.c.seq, r.c.record, t.c.lines)
                        .select_from(r.outerjoin(t, and_(t.c.device_id == r.c.device_id,
                                                         t.c.seq == r.c.seq)))
                        .where(tuple_(r.c.device_id, r.c.seq).in_(keys))).all()
    return {(d, s): (rec, lines if lines is not None else record_text(rec).lines)
            for d, s, rec, lines in rows}


def _with_fields():
    rf = receipt_fields
    return (select(receipts.c.device_id, receipts.c.seq, receipts.c.received_at,
                   rf.c.store, rf.c.receipt_no, rf.c.receipt_dt, rf.c.total, rf.c.currency,
                   rf.c.payment_types, rf.c.member_id, rf.c.customer_id, rf.c.item_count,
                   rf.c.refund, rf.c.void, rf.c.status, rf.c.reason)
            .select_from(receipts.outerjoin(rf, and_(rf.c.device_id == receipts.c.device_id,
                                                     rf.c.seq == receipts.c.seq))))


def search(engine, q=None, device=None, start=None, end=None, limit=50):
    """Receipts with their main fields, newest first; q matches store, receipt number, member
    ID or an item name; start and end (dates) bound the printed date."""
    rf, it = receipt_fields, receipt_items
    query = _with_fields().order_by(receipts.c.received_at.desc(), receipts.c.seq.desc()) \
        .limit(limit)
    if device:
        query = query.where(receipts.c.device_id == device)
    if start:
        query = query.where(rf.c.receipt_dt >= dt.datetime.combine(start, dt.time()))
    if end:
        query = query.where(rf.c.receipt_dt < dt.datetime.combine(
            end + dt.timedelta(days=1), dt.time()))
    if q:
        # autoescape: a % or _ typed in the search box is that character, not a wildcard
        text = q.lower()
        item = exists().where(it.c.device_id == rf.c.device_id, it.c.seq == rf.c.seq,
                              func.lower(it.c.name).contains(text, autoescape=True))
        query = query.where(or_(func.lower(rf.c.store).contains(text, autoescape=True),
                                func.lower(rf.c.receipt_no).contains(text, autoescape=True),
                                rf.c.member_id.contains(text, autoescape=True), item))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def detail(engine, device_id, seq):
    """One receipt: its main fields, "lines" (text, then any OCR text), "ocr" (whether OCR
    read it), "codes" [[kind, data]] (cleaned: the record keeps what the device sent),
    "items" and "payments" rows, "extraction_error" (why extraction failed, or None); None if
    there is none."""
    def key(t):
        return and_(t.c.device_id == device_id, t.c.seq == seq)

    with engine.connect() as conn:
        row = conn.execute(_with_fields().add_columns(receipts.c.record)
                           .where(key(receipts))).first()
        if row is None:
            return None
        text = stored_text(conn, [(device_id, seq)])[(device_id, seq)][1]
        items = conn.execute(select(receipt_items).where(key(receipt_items))
                             .order_by(receipt_items.c.line_no)).all()
        payments = conn.execute(select(receipt_payments).where(key(receipt_payments))
                                .order_by(receipt_payments.c.line_no)).all()
        read = conn.execute(select(receipt_ocr.c.lines).where(key(receipt_ocr))).scalar()
        failed = conn.execute(select(extraction_errors.c.error)
                              .where(key(extraction_errors))).scalar()
    out = dict(row._mapping)
    record = out.pop("record")
    # the lines the extractor read: a raster-only receipt's come from OCR
    out["lines"] = text + (read or [])
    out["ocr"] = bool(read)
    # not extracted yet: the status the board sent
    out["status"] = out["status"] or record.get("status", COMPLETE)
    out["codes"] = clean_value([list(c) for c in record.get("barcodes", []) +
                                record.get("codes2d", [])])
    out["extraction_error"] = failed
    out["items"] = [dict(i._mapping) for i in items]
    out["payments"] = [dict(p._mapping) for p in payments]
    return out
