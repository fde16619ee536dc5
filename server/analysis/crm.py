"""Customers: CSV import (upsert by member ID) and single adds, then receipts re-linked.

CSV: a header row; columns member_id, phone, name, email (any order, case-insensitive); every
other column goes into the customer's attributes ({"tier": "gold"}). A row needs a member_id
or a phone. Bad rows are reported, not fatal:

    imported, errors = import_csv(engine, open("customers.csv", newline=""))
    # errors: [(row number as in a spreadsheet, header = 1, reason), ...]
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select

from tilltap.analysis.extraction import link_customers, phone_key
from tilltap.ingest.text import clean_value
from tilltap.storage import database
from tilltap.storage.schema import customers, receipt_fields
from tilltap_fw.receipt import COMPLETE

KNOWN = ("member_id", "phone", "name", "email")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LIMITS = {"member_id": 64, "phone": 32, "name": 200, "email": 200}


class CustomerError(ValueError):
    """A customer that cannot be stored; the message says which value is wrong."""


@dataclass
class Customer:
    """One customer as entered (CSV row or API body)."""

    member_id: str | None = None
    phone: str | None = None
    name: str | None = None
    email: str | None = None
    attributes: dict = field(default_factory=dict)

    def check(self):
        """Normalises blanks to None; CustomerError if the customer cannot be stored."""
        for name in KNOWN + ("attributes",):
            value = getattr(self, name)
            if clean_value(value) != value:   # no column stores it, no JSON answer shows it
                raise CustomerError("%s holds a NUL or an unpaired surrogate" % name)
        for name in KNOWN:
            value = (getattr(self, name) or "").strip() or None
            if value is not None and len(value) > _LIMITS[name]:
                raise CustomerError("%s longer than %d characters" % (name, _LIMITS[name]))
            setattr(self, name, value)
        if self.member_id is None and self.phone is None:
            raise CustomerError("needs a member_id or a phone")
        if self.phone is not None and phone_key(self.phone) is None:
            raise CustomerError("phone %r has fewer than 7 digits" % self.phone)
        if self.email is not None and not _EMAIL.match(self.email):
            raise CustomerError("email %r is not an e-mail address" % self.email)
        return self


def _upsert(conn, customer):
    """Updates the customer with the same member ID (or, without one, the same phone), else
    inserts; returns the customer's id."""
    values = {"member_id": customer.member_id, "phone": customer.phone,
              "phone_key": phone_key(customer.phone), "name": customer.name,
              "email": customer.email, "attributes": customer.attributes}
    if customer.member_id is not None:
        match = customers.c.member_id == customer.member_id
    else:
        match = (customers.c.member_id.is_(None)) & (customers.c.phone_key == values["phone_key"])
    existing = conn.execute(select(customers.c.id, customers.c.attributes).where(match)).first()
    if existing is None:
        return conn.execute(customers.insert().values(created_at=database.utcnow(), **values)
                            .returning(customers.c.id)).scalar()
    # attributes merge: a CSV with fewer columns does not erase what an earlier one set
    values["attributes"] = dict(existing.attributes or {}, **customer.attributes)
    conn.execute(customers.update().where(customers.c.id == existing.id).values(**values))
    return existing.id


def add(engine, customer):
    """Stores one customer (upsert) and links its receipts; returns its id."""
    customer.check()
    with engine.begin() as conn:
        customer_id = _upsert(conn, customer)
    link_customers(engine)
    return customer_id


def import_csv(engine, file):
    """Imports customers from a CSV text file object (or str/bytes); returns (imported, errors).

    Rows are checked before they touch the database, so a bad row is skipped and reported and
    never loses the others; errors lists (row number, reason) with the header as row 1.
    """
    if isinstance(file, bytes):
        file = file.decode("utf-8-sig")
    if isinstance(file, str):
        file = io.StringIO(file, newline="")   # the csv module reads CR, LF and CRLF itself
    reader = csv.DictReader(file)
    header = [(h or "").strip().lower() for h in reader.fieldnames or ()]
    if not set(header) & {"member_id", "phone"}:
        return 0, [(1, "header needs a member_id or phone column (got: %s)" % ", ".join(header))]
    reader.fieldnames = header
    imported, errors = 0, []
    with engine.begin() as conn:
        for number, row in enumerate(reader, start=2):
            if None in row:
                errors.append((number, "more values than header columns"))
                continue
            extra = {k: v for k, v in row.items() if k not in KNOWN and k and v not in (None, "")}
            try:
                customer = Customer(member_id=row.get("member_id"), phone=row.get("phone"),
                                    name=row.get("name"), email=row.get("email"),
                                    attributes=extra).check()
            except CustomerError as e:
                errors.append((number, str(e)))
                continue
            _upsert(conn, customer)
            imported += 1
    link_customers(engine)
    return imported, errors


def list_customers(engine, q=None, limit=100, offset=0):
    """Customers (id order) with their visits, spend and last visit; q matches member ID,
    name, e-mail or phone."""
    rf = receipt_fields
    visits = (select(rf.c.customer_id, func.count().label("visits"),
                     func.sum(rf.c.total).label("spend"),
                     func.max(rf.c.receipt_dt).label("last_visit"))
              .where(rf.c.customer_id.is_not(None), rf.c.void.is_(False),
                     rf.c.status == COMPLETE)
              .group_by(rf.c.customer_id).subquery())
    query = (select(customers, func.coalesce(visits.c.visits, 0).label("visits"), visits.c.spend,
                    visits.c.last_visit)
             .select_from(customers.outerjoin(visits, visits.c.customer_id == customers.c.id))
             .order_by(customers.c.id).limit(limit).offset(offset))
    if q:
        # autoescape: a % or _ typed in the search box is that character, not a wildcard
        query = query.where(or_(*(func.lower(c).contains(q.lower(), autoescape=True) for c in (
            customers.c.member_id, customers.c.name, customers.c.email, customers.c.phone))))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
