"""Receipt fields into the analysis tables, and receipts linked to customers.

    extract_and_store(engine, device_id, seq)   # one stored receipt -> receipt_fields/items
    extract_pending(engine)                     # every receipt without fields yet
    PendingExtractor(engine).start()            # `tilltap serve`: extract_pending every few s
    reextract_all(engine, progress)             # `tilltap reextract`: after a rule or template
                                                # change
    link_customers(engine)                      # after a CRM import: member ID, else phone
    try_template(engine, device_id, seq, t)     # what a draft layout template would extract

A receipt's fields come from analysis.extract on its text (receipt_text, with the printer's
layout template when one is stored; OCR text for raster-only receipts), so re-running gives the
same rows: a receipt's rows are replaced whole, never patched. A batch is read in one short
read, extracted (OCR, rules) with no transaction open, and written in one short write
transaction: SQLite's single writer is never held by CPU work. One extractor runs at a time
(the serve process or the CLI).

No receipt can stop the others: every string read from a record is cleaned (NUL and lone
surrogates as U+FFFD) before it reaches a column, and a receipt whose extraction or write still
fails is kept in extraction_errors, logged and skipped by extract_pending (the fleet report
counts them); the rest of its batch is stored.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from decimal import Decimal, InvalidOperation

from sqlalchemy import and_, delete, func, select, true, tuple_, update

from tilltap.analysis import summaries
from tilltap.analysis.extract import (
    TemplateError,
    apply_template,
    board_fields,
    extract_fields,
    load_template,
)
from tilltap.ingest.rawbytes import raw_bytes
from tilltap.ingest.text import clean, clean_value
from tilltap.ocr import reader as ocr
from tilltap.storage import templates as stored_templates
from tilltap.storage.database import insert, unavailable, utcnow
from tilltap.storage.receipts import stored_text
from tilltap.storage.schema import (
    customers,
    extraction_errors,
    receipt_fields,
    receipt_items,
    receipt_ocr,
    receipt_payments,
    receipts,
)
from tilltap_fw import fields as rules
from tilltap_fw import protocol
from tilltap_fw.receipt import COMPLETE

log = logging.getLogger("tilltap.analysis")

BATCH = 500
_MAX_AMOUNT = Decimal(10) ** 12  # Numeric(14, 2); a larger "amount" is a misread number
_MAX_QTY = Decimal(10) ** 11     # Numeric(14, 3)
_PLACES = Decimal("0.001")       # the finest scale of the amount and quantity columns

# Refunds and voids as POS software prints them (folded to lower case).
_REFUND = re.compile(r"\b(refund|return|retoure|rückgabe|erstattung|remboursement|avoir|"
                     r"devoluci[oó]n|reembolso)\b|退货|退款")
_VOID = re.compile(r"\b(void|voided|storno|storniert|annulation|annulé|anulad[oa]|cancelad[oa])\b"
                   r"|作废|撤销")
_PHONE_LABEL = re.compile(r"\b(tel|phone|mobile|mob|handy|telefon|t[ée]l[ée]phone|portable|"
                          r"tel[ée]fono|m[oó]vil)\b|电话|手机")
_PHONE = re.compile(r"\+?\d[\d ()/.-]{5,20}\d")
_TRAILING_DIGITS = re.compile(r"(\d{1,18})\D*$")


def phone_key(phone):
    """The last 9 digits of a phone number, so national and international forms match; None
    for fewer than 7 digits (not a phone number)."""
    digits = re.sub(r"\D", "", phone or "")
    return digits[-9:] if len(digits) >= 7 else None


def _receipt_phone(lines):
    """The phone key of the last labelled phone number on the receipt: the store's own number
    is in the header, a customer's (loyalty, delivery) further down."""
    found = None
    for line in lines:
        if line and _PHONE_LABEL.search(rules.fold(line)):
            match = _PHONE.search(line)
            if match:
                found = phone_key(match.group()) or found
    return found


def _amount(text, limit=_MAX_AMOUNT):
    try:
        value = Decimal(text)
    except (TypeError, InvalidOperation):
        return None
    if not value.is_finite() or abs(value) >= limit:
        return None
    return value.quantize(_PLACES)   # "1e-2000" is finite too: no exponent reaches the DB


def _cut(text, size):
    """text for a String(size) column: cut, and clean (a board-extracted field or a code's
    data can hold NUL or lone surrogates, which no column stores)."""
    return clean(text[:size])[0] if text else None


def _receipt_dt(printed, record):
    """The printed local date-time; else the capture time (UTC) if the tap's clock was set."""
    if printed:
        try:
            when = dt.datetime.fromisoformat(printed)
        except ValueError:
            when = None
        if when is not None:   # local time as printed; an offset (not from our extractors) to UTC
            return when if when.tzinfo is None else when.astimezone(dt.timezone.utc).replace(
                tzinfo=None)
    if record.get("time_synced"):
        return dt.datetime.fromtimestamp(record["captured_at"] / 1000,
                                         dt.timezone.utc).replace(tzinfo=None)
    return None


def _ocr_inputs(conn, found):
    """(OCR lines read before {key: lines}, [(key, raw, raw encoding, record)] to read now) of
    the raster-only receipts among found [(device_id, seq, record)] whose raw bytes were
    uploaded (config upload.images)."""
    records = {(d, s): r for d, s, r in found if ocr.raster_only(r)}
    if not records:
        return {}, []
    wanted = list(records)
    known = {(r.device_id, r.seq): r.lines for r in conn.execute(
        select(receipt_ocr.c.device_id, receipt_ocr.c.seq, receipt_ocr.c.lines)
        .where(tuple_(receipt_ocr.c.device_id, receipt_ocr.c.seq).in_(wanted)))}
    unread = [k for k in wanted if k not in known]
    raws = conn.execute(select(receipts.c.device_id, receipts.c.seq, receipts.c.raw,
                               receipts.c.raw_encoding)
                        .where(tuple_(receipts.c.device_id, receipts.c.seq).in_(unread),
                               receipts.c.raw.is_not(None))).all() if unread else []
    return known, [((d, s), raw, encoding, records[(d, s)]) for d, s, raw, encoding in raws]


def _read_ocr(unread):
    """OCR of raster-only receipts ([(key, raw, raw encoding, record)]): receipt_ocr rows, card
    numbers masked. A receipt OCR cannot read (no Tesseract, bad raw bytes) is logged and left
    out; the next extraction tries again."""
    rows = []
    for (device_id, seq), raw, encoding, record in unread:
        started = time.perf_counter()
        try:
            # parsed as the board parsed it: the printer context the record carries
            page = ocr.raw_page(raw_bytes(raw, encoding),
                                **protocol.parser_options(record.get("printer")))
            lines = [rules.mask_cards(line) for line in ocr.ocr_image(page)] if page else []
        except (ocr.OcrUnavailable, ValueError, RuntimeError) as e:
            log.warning("receipt %s/%d not OCRed: %s", device_id, seq, e)
            continue
        rows.append({"device_id": device_id, "seq": seq, "lines": lines,
                     "seconds": round(time.perf_counter() - started, 3), "read_at": utcnow()})
    return rows


def ocr_lines(engine, found):
    """{(device_id, seq): OCR text lines} of the raster-only receipts among found
    [(device_id, seq, record)]: kept from an earlier read (receipt_ocr), else read now (no
    transaction open meanwhile) and kept."""
    with engine.connect() as conn:
        known, unread = _ocr_inputs(conn, found)
    new = _read_ocr(unread)
    if new:
        with engine.begin() as conn:
            conn.execute(insert(engine, receipt_ocr).on_conflict_do_nothing(), new)
    known.update(((r["device_id"], r["seq"]), r["lines"]) for r in new)
    return known


def _rows(device_id, seq, record, text, template, read=()):
    """(receipt_fields row, receipt_items rows, receipt_payments rows) for one stored record;
    text: its lines (receipt_text); read: its OCR text lines, if any."""
    lines = list(text) + list(read)
    if "fields" in record:        # upload mode "fields": the board extracted, no text came
        found = board_fields(clean_value(record["fields"]))
    else:
        found = extract_fields(lines, _codes(record), template)
    folded = [rules.fold(line) for line in lines if line]
    total = _amount(found.total)
    refund = (total is not None and total < 0) or any(_REFUND.search(t) for t in folded)
    key = {"device_id": device_id, "seq": seq}
    items = [dict(key, line_no=n, name=_cut(i.name, 200), qty=_amount(i.qty, _MAX_QTY),
                  unit_price=_amount(i.unit_price), amount=_amount(i.amount), sku=_cut(i.sku, 32))
             for n, i in enumerate(found.items)]
    payments = [dict(key, line_no=n, type=_cut(p.type, 16), amount=_amount(p.amount))
                for n, p in enumerate(found.payments)]
    number = _TRAILING_DIGITS.search(found.receipt_no or "")
    row = dict(
        key, store=_cut(found.store, 200), receipt_no=_cut(found.receipt_no, 64),
        receipt_num=int(number.group(1)) if number else None,
        receipt_dt=_receipt_dt(found.datetime, record), total=total,
        currency=_cut(found.currency, 3),
        payment_types=_cut(",".join(sorted({p.type for p in found.payments})), 100) or None,
        member_id=_cut(found.member_id, 64), phone_key=_receipt_phone(lines), customer_id=None,
        item_count=len(items), refund=bool(refund), void=any(_VOID.search(t) for t in folded),
        template=template is not None and "fields" not in record, extracted_at=utcnow(),
        status=record.get("status", COMPLETE), reason=_cut(record.get("reason"), 32))
    return row, items, payments


def _codes(record):
    """A record's barcodes and 2D codes, [kind, data] pairs, cleaned."""
    return clean_value(list(record.get("barcodes", ())) + list(record.get("codes2d", ())))


def _templates(conn, device_ids):
    """{device_id: Template} for the devices that have a valid stored template."""
    out = {}
    for device_id, template in stored_templates.of_devices(conn, device_ids).items():
        try:
            out[device_id] = load_template(template)
        except TemplateError:
            continue  # checked on PUT; one edited by hand in the database is skipped, not fatal
    return out


def _customer_ids(conn, rows):
    """Sets customer_id on receipt_fields rows: by member ID, else by a phone key that exactly
    one customer has."""
    members = {r["member_id"] for r in rows if r["member_id"]}
    phones = {r["phone_key"] for r in rows if r["phone_key"]}
    by_member, by_phone = {}, {}
    if members:
        by_member = dict(conn.execute(select(customers.c.member_id, customers.c.id).where(
            customers.c.member_id.in_(sorted(members)))).all())
    if phones:
        by_phone = dict(conn.execute(
            select(customers.c.phone_key, func.min(customers.c.id))
            .where(customers.c.phone_key.in_(sorted(phones)))
            .group_by(customers.c.phone_key).having(func.count() == 1)).all())
    for row in rows:
        row["customer_id"] = by_member.get(row["member_id"]) or by_phone.get(row["phone_key"])


def _extract(engine, keys):
    """Extracts and stores the receipts keys [(device_id, seq)]: read, extract (no transaction
    open), write. Returns how many were extracted; a receipt that fails is kept in
    extraction_errors instead (a database outage raises: nothing to blame on a receipt)."""
    if not keys:
        return 0
    with engine.connect() as conn:
        stored = stored_text(conn, keys)
        templates = _templates(conn, {d for d, _ in stored})
        known, unread = _ocr_inputs(conn, [(d, s, rec) for (d, s), (rec, _) in stored.items()])
    new_ocr = _read_ocr(unread)
    read = dict(known)
    read.update(((r["device_id"], r["seq"]), r["lines"]) for r in new_ocr)
    extracted, failed = {}, {}
    for (device_id, seq), (record, text) in stored.items():
        try:
            extracted[(device_id, seq)] = _rows(device_id, seq, record, text,
                                                templates.get(device_id),
                                                read.get((device_id, seq), ()))
        except Exception as e:  # a rule's bug or odd data: this receipt only
            log.exception("receipt %s/%d not extracted", device_id, seq)
            failed[(device_id, seq)] = e
    try:
        _write(engine, new_ocr, list(extracted.values()))
    except Exception as e:
        if unavailable(e) or len(extracted) < 2:
            if unavailable(e):
                raise
            failed.update(dict.fromkeys(extracted, e))
            extracted = {}
        else:   # find the receipt(s) the database refuses: each alone
            log.warning("writing %d receipts' fields failed (%s): one by one", len(extracted),
                        str(e).split("\n", 1)[0][:200])
            try:
                _write(engine, new_ocr, [])
            except Exception as one:
                if unavailable(one):
                    raise
                log.warning("OCR text not kept (read again next time): %s", one)
            for key, rows in list(extracted.items()):
                try:
                    _write(engine, [], [rows])
                except Exception as one:
                    if unavailable(one):
                        raise
                    failed[key] = one
                    del extracted[key]
    _keep_failures(engine, failed)
    return len(extracted)


def _write(engine, new_ocr, extracted):
    """Stores OCR text read now and the rows of extracted receipts [(fields row, item rows,
    payment rows)], replacing their old rows, in one transaction."""
    fields_rows = [f for f, _, _ in extracted]
    item_rows = [i for _, items, _ in extracted for i in items]
    payment_rows = [p for _, _, payments in extracted for p in payments]
    with engine.begin() as conn:
        if new_ocr:
            conn.execute(insert(engine, receipt_ocr).on_conflict_do_nothing(), new_ocr)
        if not fields_rows:
            return
        _customer_ids(conn, fields_rows)
        done = [(r["device_id"], r["seq"]) for r in fields_rows]
        old = conn.execute(select(receipt_fields.c.device_id, receipt_fields.c.store,
                                  receipt_fields.c.receipt_dt)
                           .where(tuple_(receipt_fields.c.device_id, receipt_fields.c.seq)
                                  .in_(done))).all()
        # Children first: PostgreSQL enforces the foreign keys, SQLite (no PRAGMA) does not
        # cascade. A receipt that failed before and extracts now is no failure any more.
        for table in (receipt_items, receipt_payments, receipt_fields, extraction_errors):
            conn.execute(delete(table).where(tuple_(table.c.device_id, table.c.seq).in_(done)))
        for table, rows in ((receipt_fields, fields_rows), (receipt_items, item_rows),
                            (receipt_payments, payment_rows)):
            if rows:
                conn.execute(table.insert(), rows)
        summaries.update(conn, [(r.device_id, r.store, r.receipt_dt) for r in old] +
                         [(r["device_id"], r["store"], r["receipt_dt"]) for r in fields_rows])


def _keep_failures(engine, failed):
    """Records the receipts extraction failed on {key: exception} (replacing older
    failures of theirs), so extract_pending skips them from now on."""
    if not failed:
        return
    now = utcnow()
    rows = [{"device_id": d, "seq": s, "failed_at": now,
             "error": clean("%s: %s" % (type(e).__name__, str(e).split("\n", 1)[0]))[0][:200]}
            for (d, s), e in failed.items()]
    log.error("%d receipts not extracted, skipped from now on (see the fleet report), e.g. "
              "%s/%d: %s", len(rows), rows[0]["device_id"], rows[0]["seq"], rows[0]["error"])
    keys = list(failed)
    with engine.begin() as conn:
        conn.execute(delete(extraction_errors).where(
            tuple_(extraction_errors.c.device_id, extraction_errors.c.seq).in_(keys)))
        conn.execute(extraction_errors.insert(), rows)


def extract_and_store(engine, device_id, seq):
    """Extracts one stored receipt's fields and replaces its analysis rows; False if no such
    receipt or it failed (then kept in extraction_errors)."""
    return _extract(engine, [(device_id, seq)]) == 1


def extract_pending(engine, limit=None):
    """Extracts every stored receipt that has no fields yet (new uploads), leaving out those
    that failed before (extraction_errors); returns the count extracted."""
    done = 0
    while limit is None or done < limit:
        size = BATCH if limit is None else min(BATCH, limit - done)
        with engine.connect() as conn:
            keys = [tuple(k) for k in conn.execute(
                select(receipts.c.device_id, receipts.c.seq)
                .outerjoin(receipt_fields, and_(receipt_fields.c.device_id == receipts.c.device_id,
                                                receipt_fields.c.seq == receipts.c.seq))
                .outerjoin(extraction_errors,
                           and_(extraction_errors.c.device_id == receipts.c.device_id,
                                extraction_errors.c.seq == receipts.c.seq))
                .where(receipt_fields.c.seq.is_(None), extraction_errors.c.seq.is_(None))
                .limit(size))]
        done += _extract(engine, keys)
        if len(keys) < size:
            break
    return done


def reextract_all(engine, progress=None, device_id=None):
    """Re-extracts every stored receipt (new rules, a changed template), or only device_id's;
    returns the count.

    progress: callable(done, total) after each batch. Pages by key, so receipts arriving
    meanwhile are either included or left to extract_pending.
    """
    scope = true() if device_id is None else receipts.c.device_id == device_id
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(receipts).where(scope)).scalar()
    done, after = 0, None
    key = tuple_(receipts.c.device_id, receipts.c.seq)
    while True:
        query = select(receipts.c.device_id, receipts.c.seq).where(scope).order_by(
            receipts.c.device_id, receipts.c.seq).limit(BATCH)
        if after is not None:
            query = query.where(key > tuple_(*after))
        with engine.connect() as conn:
            keys = [tuple(k) for k in conn.execute(query)]
        done += _extract(engine, keys)
        if progress is not None:
            progress(done, total)
        if len(keys) < BATCH:
            break
        after = keys[-1]
    if device_id is None:
        summaries.rebuild(engine)  # also drops groups no receipt is in any more
    return done


def failures(engine, device_id=None):
    """How many receipts (of device_id, or all) extraction failed on and skips."""
    query = select(func.count()).select_from(extraction_errors)
    if device_id is not None:
        query = query.where(extraction_errors.c.device_id == device_id)
    with engine.connect() as conn:
        return conn.execute(query).scalar()


def link_customers(engine):
    """Re-links every receipt to its customer (member ID first, else a phone key exactly one
    customer has); returns the number of receipts linked. Run after customers change."""
    rf = receipt_fields
    by_member = select(customers.c.id).where(customers.c.member_id == rf.c.member_id) \
        .scalar_subquery()
    by_phone = select(func.min(customers.c.id)).where(customers.c.phone_key == rf.c.phone_key) \
        .group_by(customers.c.phone_key).having(func.count() == 1).scalar_subquery()
    with engine.begin() as conn:
        conn.execute(update(rf).values(customer_id=func.coalesce(by_member, by_phone)))
        return conn.execute(select(func.count()).select_from(rf)
                            .where(rf.c.customer_id.is_not(None))).scalar()


class PendingExtractor:
    """A thread that runs extract_pending every interval seconds, so reports follow uploads
    without slowing the ingest path (extraction never delays an ack)."""

    def __init__(self, engine, interval=5.0):
        self.engine = engine
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pending-extractor", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def close(self):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            try:
                extract_pending(self.engine)
            except Exception:  # a database outage: log, try again next round
                log.exception("extracting new receipts failed")
            self._stop.wait(self.interval)


def try_template(engine, device_id, seq, template_json):
    """What a draft layout template extracts from one stored receipt; nothing is stored.

    Returns {"device_id", "seq", "template": what the template's own rules find, "fields": the
    receipt's fields with the template applied}. Raises TemplateError for a bad template and
    LookupError when there is no such receipt.
    """
    template = load_template(template_json)
    with engine.connect() as conn:
        record, text = stored_text(conn, [(device_id, seq)]).get((device_id, seq), (None, None))
    read = ocr_lines(engine, [(device_id, seq, record)]) if record is not None else {}
    if record is None:
        raise LookupError("no receipt %s/%d" % (device_id, seq))
    if "fields" in record:
        raise TemplateError("receipt %s/%d came in upload mode fields: it has no text for a "
                            "template" % (device_id, seq))
    lines = text + read.get((device_id, seq), [])
    fields = extract_fields(lines, _codes(record), template)
    found = apply_template(template, [line if line is None else rules.mask_cards(line)
                                      for line in lines])
    if "items" in found:
        found["items"] = [vars(i) for i in found["items"]]
    return {"device_id": device_id, "seq": seq, "template": found, "fields": fields.to_dict()}
