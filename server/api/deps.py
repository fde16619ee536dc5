"""What every route shares: the engine and ingest of the app, HTTP Basic credentials, the
operator login (session cookie or Basic, failed logins backed off), bounds on parameters, the
status codes operator routes answer (for the OpenAPI schema), and how values are encoded in JSON
and CSV."""
from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import io
import math
from decimal import Decimal

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from tilltap.accounts import operators

SESSION_COOKIE = "tilltap_session"
MAX_ROWS = 1000     # the most rows any list or report answers with
# Integer parameters past these answer 422: larger values mean nothing here and overflow the
# database's integers (OFFSET is a signed 64-bit) or Python's datetime arithmetic.
MAX_OFFSET = 2**31 - 1
MAX_HOURS = 100 * 366 * 24
# The last date a query may name: ranges end the day after and reports step by months, which
# must stay within Python's dates (year 9999).
MAX_DATE = dt.date(9998, 12, 31)
# Request bodies an operator route reads at most (FastAPI's max_body_size: the declared
# Content-Length is checked before anything is read, a chunked body is cut off at the limit;
# both answer 413). Routes that take more or less say so themselves.
MAX_BODY = 64 * 1024
# What every operator route may answer besides its own success (OpenAPI)
OPERATOR_RESPONSES: dict[int | str, dict] = {
    400: {"description": "a body that cannot be parsed (broken JSON or multipart)"},
    401: {"description": "operator login required (session cookie or HTTP Basic)"},
    403: {"description": "cross-site request refused (CSRF check)"},
    413: {"description": "request body larger than the route takes"},
    422: {"description": "a parameter or the body is not valid"},
    429: {"description": "too many failed logins: retry after Retry-After seconds"},
}


def engine(request: Request):
    """The app's database engine."""
    return request.app.state.engine


def ingest(request: Request):
    """The app's ingest.writer.Ingest."""
    return request.app.state.ingest


def basic_credentials(request):
    """(user, password) of an HTTP Basic header, else (None, None)."""
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        return None, None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeError):
        return None, None
    if "\0" in user or "\0" in password:   # no such name can be stored (PostgreSQL text)
        return None, None
    return user, password


def client_address(request):
    """The client's address (the proxy's X-Forwarded-For when it is a trusted proxy)."""
    return request.client.host if request.client else ""


def check_login(request, engine, username, password):
    """True if username/password is an operator's login; failures back off the user and the
    client's address (accounts/throttle.py): 429 with Retry-After while they must wait, before
    the password is looked at."""
    throttle = request.app.state.login_throttle
    address = client_address(request)
    wait = throttle.wait(username, address)
    if wait > 0:
        seconds = math.ceil(wait)
        raise HTTPException(429, "too many failed logins: retry in %d s" % seconds,
                            headers={"Retry-After": str(seconds)})
    if operators.verify(engine, username, password):
        throttle.succeeded(username, address)
        return True
    throttle.failed(username, address)
    return False


def logged_in(request, engine):
    """The logged-in operator's name (session cookie first, then HTTP Basic), else None."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        user = operators.session_user(engine, token)
        if user is not None:
            return user
    username, password = basic_credentials(request)
    if username is not None and check_login(request, engine, username, password):
        return username
    return None


def operator(request: Request, engine=Depends(engine)):
    """The logged-in operator's name; 401 otherwise (429 while failed logins back off).

    Device credentials are never looked at: a tap's credential opens nothing an operator sees.
    """
    user = logged_in(request, engine)
    if user is not None:
        return user
    # The dashboard's own requests get no Basic challenge, so the browser shows our login
    # page instead of its password dialog.
    headers = None if request.headers.get("x-tilltap-dashboard") else {
        "WWW-Authenticate": 'Basic realm="tilltap operators"'}
    raise HTTPException(401, "operator login required", headers=headers)


def plain(value):
    """JSON/CSV value: money as its decimal string, times as ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def rows_json(rows):
    """Rows (dicts) with every value plain()."""
    return [{k: plain(v) for k, v in row.items()} for row in rows]


# A spreadsheet runs a cell starting with one of these as a formula (=HYPERLINK(...), a DDE
# call): text printed on a receipt or typed into a customer list must stay text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A CSV cell: plain(value), text that a spreadsheet would run as a formula prefixed with
    an apostrophe (numbers stay numbers: a refund's -3.00 is a Decimal, not text)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return plain(value)


def csv_response(rows, filename):
    """Rows (dicts) as a CSV download, every cell csv_cell()."""
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="%s"' % filename})


def query_date(value, name):
    """A YYYY-MM-DD query parameter as a date (None if absent); 422 if it is not one, or
    after MAX_DATE."""
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        day = None
    if day is None or day > MAX_DATE:
        raise HTTPException(422, "%s must be a date YYYY-MM-DD up to %s" % (name, MAX_DATE))
    return day


def row_limit(value):
    """A row limit bounded to 1..MAX_ROWS."""
    return max(1, min(value, MAX_ROWS))


class RefuseNul:
    """ASGI middleware: 400 for a request whose path or query string holds a NUL (%00).

    No route has a use for one, and PostgreSQL refuses NUL in any text value, so a NUL in a
    path or query parameter would otherwise reach the database and fail there (500)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and ("\0" in scope["path"] or
                                        b"%00" in scope.get("query_string", b"")):
            await JSONResponse({"detail": "NUL in the URL"}, status_code=400)(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def refused_value(request: Request, error):
    """Exception handler: a value the database refuses (sqlalchemy DataError: a number out of
    range, text it cannot hold; UnicodeEncodeError: a lone surrogate, which only a request's
    JSON can carry since stored text is cleaned) came from the request: 422, not 500."""
    reason = str(getattr(error, "orig", None) or error).split("\n", 1)[0][:200]
    return JSONResponse({"detail": "a value the database cannot store: %s" % reason},
                        status_code=422)
