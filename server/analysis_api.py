"""Operator API and dashboard: reports, customers, receipt search, layout templates.

    analysis_api.install(app, engine)   # in api.create_app: state + router

    POST /api/v1/login                  {"username", "password"} -> session cookie
    POST /api/v1/logout
    GET  /api/v1/reports                names of the reports
    GET  /api/v1/reports/{name}         ?from=YYYY-MM-DD&to=&store=&limit=&hours=&format=csv
    GET  /api/v1/customers              ?q=&limit=&offset=
    POST /api/v1/customers              {"member_id", "phone", "name", "email", "attributes"}
    POST /api/v1/customers/import       CSV upload (multipart field "file"), per-row errors
    GET  /api/v1/receipts               ?q=&device=&from=&to=&limit= with extracted fields
    GET  /api/v1/receipts/{device}/{seq}  lines, fields, items, payments
    GET  /api/v1/templates/{device_id}, PUT (checked with extract.load_template; re-extracts)
    POST /api/v1/templates/{device_id}/test  {"template", "seq"}: what a draft template extracts
                                        from that stored receipt (nothing is stored)
    GET  /dashboard/...                 the static dashboard (server/dashboard/)

Every /api/v1 route here needs an operator: the session cookie from /login, or HTTP Basic with
an operator's username and password. Device credentials are never looked at, so a tap's
credential opens nothing here. The cookie is HttpOnly and SameSite=Strict, which keeps other
sites from riding on it (no CSRF token needed for a same-site dashboard).

Handlers are sync (FastAPI runs them in its thread pool) and thin: parse, call reports /
analysis / crm, encode.
"""
from __future__ import annotations

import base64
import binascii
import csv
import datetime
import io
import os
from decimal import Decimal

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import and_, exists, func, or_, select

from tilltap import analysis, crm, db, operators
from tilltap.analysis_db import (customers, layout_templates, receipt_fields, receipt_items,
                                 receipt_ocr, receipt_payments)
from tilltap.extract import TemplateError, load_template
from tilltap.reports import REPORTS, ReportQuery

COOKIE = "tilltap_session"
DASHBOARD_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboard")
MAX_IMPORT_BYTES = 20 * 1024 * 1024
MAX_ROWS = 1000

router = APIRouter()


def install(app, engine):
    """Adds the operator API and the dashboard to the ingest app, on the same engine (once:
    calling it again only changes the engine)."""
    if getattr(app.state, "analysis_engine", None) is None:
        app.include_router(router)
    app.state.analysis_engine = engine


def _engine(request: Request):
    return request.app.state.analysis_engine


def _basic(request):
    """(username, password) of an HTTP Basic header, else (None, None)."""
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        return None, None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeError):
        return None, None
    return user, password


def operator(request: Request, engine=Depends(_engine)):
    """The logged-in operator's name; 401 otherwise (cookie first, then HTTP Basic)."""
    token = request.cookies.get(COOKIE)
    if token:
        user = operators.session_user(engine, token)
        if user is not None:
            return user
    username, password = _basic(request)
    if username is not None and operators.verify(engine, username, password):
        return username
    # The dashboard's own requests get no Basic challenge, so the browser shows our login
    # page instead of its password dialog.
    headers = None if request.headers.get("x-tilltap-dashboard") else {
        "WWW-Authenticate": 'Basic realm="tilltap operators"'}
    raise HTTPException(401, "operator login required", headers=headers)


# ---- encoding ---------------------------------------------------------------------------------

def _plain(value):
    """JSON/CSV value: money as its decimal string, times as ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return value


def _rows_json(rows):
    return [{k: _plain(v) for k, v in row.items()} for row in rows]


def _csv(rows, filename):
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(_rows_json(rows))
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="%s"' % filename})


def _date(value, name):
    if not value:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, "%s must be a date YYYY-MM-DD" % name) from None


# ---- login ------------------------------------------------------------------------------------

class Login(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=200)


@router.post("/api/v1/login")
def login(body: Login, request: Request, engine=Depends(_engine)):
    if not operators.verify(engine, body.username, body.password):
        raise HTTPException(401, "wrong username or password")
    response = JSONResponse({"username": body.username})
    response.set_cookie(COOKIE, operators.start_session(engine, body.username),
                        max_age=operators.SESSION_HOURS * 3600, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response


@router.post("/api/v1/logout")
def logout(request: Request, engine=Depends(_engine)):
    token = request.cookies.get(COOKIE)
    if token:
        operators.end_session(engine, token)
    response = JSONResponse({"ok": True})
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/api/v1/me")
def me(user=Depends(operator)):
    return {"username": user}


# ---- reports ----------------------------------------------------------------------------------

@router.get("/api/v1/reports")
def report_names(user=Depends(operator)):
    return {"reports": sorted(REPORTS)}


@router.get("/api/v1/reports/{name}")
def report(name: str, request: Request, store: str | None = None, limit: int = 20,
           hours: int = 24, format: str = "json", user=Depends(operator),
           engine=Depends(_engine)):
    if name not in REPORTS:
        raise HTTPException(404, "no report %r (see /api/v1/reports)" % name)
    params = request.query_params  # "from" is a Python keyword, so read it here
    query = ReportQuery(start=_date(params.get("from"), "from"), end=_date(params.get("to"), "to"),
                        store=store or None, limit=max(1, min(limit, MAX_ROWS)),
                        hours=max(0, hours))
    rows = REPORTS[name](engine, query)
    if format == "csv":
        return _csv(rows, "%s.csv" % name)
    return {"report": name, "rows": _rows_json(rows)}


# ---- customers --------------------------------------------------------------------------------

class CustomerIn(BaseModel):
    member_id: str | None = None
    phone: str | None = None
    name: str | None = None
    email: str | None = None
    attributes: dict = Field(default_factory=dict)


@router.get("/api/v1/customers")
def list_customers(q: str | None = None, limit: int = 100, offset: int = 0,
                   user=Depends(operator), engine=Depends(_engine)):
    visits = (select(receipt_fields.c.customer_id, func.count().label("visits"),
                     func.sum(receipt_fields.c.total).label("spend"),
                     func.max(receipt_fields.c.receipt_dt).label("last_visit"))
              .where(receipt_fields.c.customer_id.is_not(None), receipt_fields.c.void.is_(False))
              .group_by(receipt_fields.c.customer_id).subquery())
    query = (select(customers, func.coalesce(visits.c.visits, 0).label("visits"), visits.c.spend,
                    visits.c.last_visit)
             .select_from(customers.outerjoin(visits, visits.c.customer_id == customers.c.id))
             .order_by(customers.c.id).limit(max(1, min(limit, MAX_ROWS))).offset(max(0, offset)))
    if q:
        like = "%" + q.lower() + "%"
        query = query.where(or_(*(func.lower(c).like(like) for c in (
            customers.c.member_id, customers.c.name, customers.c.email, customers.c.phone))))
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    return {"customers": _rows_json(rows)}


@router.post("/api/v1/customers")
def add_customer(body: CustomerIn, user=Depends(operator), engine=Depends(_engine)):
    try:
        customer_id = crm.add(engine, crm.Customer(**body.model_dump()))
    except crm.CustomerError as e:
        raise HTTPException(422, str(e)) from None
    return {"id": customer_id}


@router.post("/api/v1/customers/import")
def import_customers(file: UploadFile, user=Depends(operator), engine=Depends(_engine)):
    data = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise HTTPException(413, "CSV larger than %d bytes" % MAX_IMPORT_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HTTPException(422, "CSV must be UTF-8") from None
    imported, errors = crm.import_csv(engine, text)
    return {"imported": imported, "errors": [{"row": r, "error": e} for r, e in errors]}


# ---- receipts ---------------------------------------------------------------------------------

def _receipt_query():
    rf = receipt_fields
    return (select(db.receipts.c.device_id, db.receipts.c.seq, db.receipts.c.received_at,
                   rf.c.store, rf.c.receipt_no, rf.c.receipt_dt, rf.c.total, rf.c.currency,
                   rf.c.payment_types, rf.c.member_id, rf.c.customer_id, rf.c.item_count,
                   rf.c.refund, rf.c.void)
            .select_from(db.receipts.outerjoin(rf, and_(rf.c.device_id == db.receipts.c.device_id,
                                                        rf.c.seq == db.receipts.c.seq))))


@router.get("/api/v1/receipts")
def search_receipts(request: Request, q: str | None = None, device: str | None = None,
                    limit: int = 50, user=Depends(operator), engine=Depends(_engine)):
    """Newest first; q matches store, receipt number, member ID or an item name."""
    rf, it = receipt_fields, receipt_items
    params = request.query_params
    start, end = _date(params.get("from"), "from"), _date(params.get("to"), "to")
    query = _receipt_query().order_by(db.receipts.c.received_at.desc(), db.receipts.c.seq.desc()) \
        .limit(max(1, min(limit, MAX_ROWS)))
    if device:
        query = query.where(db.receipts.c.device_id == device)
    if start:
        query = query.where(rf.c.receipt_dt >= datetime.datetime.combine(start, datetime.time()))
    if end:
        query = query.where(rf.c.receipt_dt < datetime.datetime.combine(
            end + datetime.timedelta(days=1), datetime.time()))
    if q:
        like = "%" + q.lower() + "%"
        item = exists().where(it.c.device_id == rf.c.device_id, it.c.seq == rf.c.seq,
                              func.lower(it.c.name).like(like))
        query = query.where(or_(func.lower(rf.c.store).like(like),
                                func.lower(rf.c.receipt_no).like(like),
                                rf.c.member_id.like(like), item))
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    return {"receipts": _rows_json(rows)}


@router.get("/api/v1/receipts/{device_id}/{seq}")
def receipt(device_id: str, seq: int, user=Depends(operator), engine=Depends(_engine)):
    key = lambda t: and_(t.c.device_id == device_id, t.c.seq == seq)  # noqa: E731
    with engine.connect() as conn:
        row = conn.execute(_receipt_query().add_columns(db.receipts.c.record)
                           .where(key(db.receipts))).first()
        if row is None:
            raise HTTPException(404, "no receipt %s/%d" % (device_id, seq))
        text = analysis.stored_text(conn, [(device_id, seq)])[(device_id, seq)][1]
        items = conn.execute(select(receipt_items).where(key(receipt_items))
                             .order_by(receipt_items.c.line_no)).all()
        payments = conn.execute(select(receipt_payments).where(key(receipt_payments))
                                .order_by(receipt_payments.c.line_no)).all()
        read = conn.execute(select(receipt_ocr.c.lines).where(key(receipt_ocr))).scalar()
    out = dict(row._mapping)
    record = out.pop("record")
    out = {k: _plain(v) for k, v in out.items()}
    # the lines the extractor read: a raster-only receipt's come from OCR
    out["lines"] = text + (read or [])
    out["ocr"] = bool(read)
    out["codes"] = [list(c) for c in record.get("barcodes", []) + record.get("codes2d", [])]
    out["items"] = _rows_json([dict(i._mapping) for i in items])
    out["payments"] = _rows_json([dict(p._mapping) for p in payments])
    return out


# ---- layout templates -------------------------------------------------------------------------

@router.get("/api/v1/templates/{device_id}")
def get_template(device_id: str, user=Depends(operator), engine=Depends(_engine)):
    with engine.connect() as conn:
        row = conn.execute(select(layout_templates).where(
            layout_templates.c.device_id == device_id)).first()
    if row is None:
        raise HTTPException(404, "no template for %s" % device_id)
    return {"device_id": device_id, "template": row.template,
            "updated_at": _plain(row.updated_at)}


@router.put("/api/v1/templates/{device_id}")
def put_template(device_id: str, template: dict, tasks: BackgroundTasks,
                 user=Depends(operator), engine=Depends(_engine)):
    """Stores a checked template and re-extracts the printer's receipts in the background."""
    try:
        load_template(template)
    except TemplateError as e:
        raise HTTPException(422, str(e)) from None
    values = {"template": template, "updated_at": db.utcnow()}
    with engine.begin() as conn:
        found = conn.execute(layout_templates.update().where(
            layout_templates.c.device_id == device_id).values(**values)).rowcount
        if not found:
            conn.execute(layout_templates.insert().values(device_id=device_id, **values))
    tasks.add_task(analysis.reextract_all, engine, None, device_id)
    return {"device_id": device_id, "reextracting": True}


class TemplateTest(BaseModel):
    template: dict
    seq: int


@router.post("/api/v1/templates/{device_id}/test")
def test_template(device_id: str, body: TemplateTest, user=Depends(operator),
                  engine=Depends(_engine)):
    """A draft template run on one stored receipt of the printer: "template" what its own rules
    find (None where a rule finds nothing), "fields" the receipt's fields with it applied.
    Nothing is stored."""
    try:
        return analysis.try_template(engine, device_id, body.seq, body.template)
    except TemplateError as e:
        raise HTTPException(422, str(e)) from None
    except LookupError as e:
        raise HTTPException(404, str(e)) from None


# ---- dashboard --------------------------------------------------------------------------------

@router.get("/dashboard", include_in_schema=False)
def dashboard_root():
    return RedirectResponse("/dashboard/")


@router.get("/dashboard/{path:path}", include_in_schema=False)
def dashboard_file(path: str):
    """A file of server/dashboard/ (index.html for the folder); nothing outside it."""
    name = os.path.normpath(path or "index.html")
    full = os.path.join(DASHBOARD_DIR, name)
    if name.startswith("..") or os.path.isabs(name) or not os.path.isfile(full):
        raise HTTPException(404, "not found")
    return FileResponse(full, headers={"Cache-Control": "no-cache"})
