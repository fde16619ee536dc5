"""The web side against hostile pages and clients (issue 15, findings 4, 6, 7, 8, 12): bodies
limited per route before they are read, failed logins backed off, one scrypt per login
whatever the name, CSRF refused, security headers everywhere, Secure cookies behind a trusted
TLS proxy, CSV cells that a spreadsheet would run escaped, /healthz counters only for
monitoring, LIKE wildcards literal, the OpenAPI schema listing what routes answer. On SQLite
and PostgreSQL (the search queries differ per database)."""
import base64
import csv
import hashlib
import io
import socket
import threading
import time
from decimal import Decimal

import analysis_data as data
import pytest
import uvicorn
from starlette.testclient import TestClient

from tilltap.accounts import operators, throttle
from tilltap.api import customers, session, templates
from tilltap.api.deps import OPERATOR_RESPONSES, csv_cell, csv_response
from tilltap.api.security import CONTENT_SECURITY_POLICY, SecuritySettings
from tilltap.app import create_app
from tilltap.ingest.writer import Ingest
from tilltap.storage import database
from tilltap_fw import protocol

OPERATOR = ("ops", "correct horse battery")
TOKEN = "monitoring-token-of-the-test"


def _basic(user, password):
    token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    return {"Authorization": "Basic " + token}


class Clock:
    """A clock the test moves (the back-off's waits without sleeping)."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def shop(db_target):
    engine = database.make_engine(db_target.url, schema=db_target.schema)
    secrets = data.load(engine)
    operators.add(engine, *OPERATOR)
    ingest = Ingest(engine, check_devices=True)
    app = create_app(ingest, settings=SecuritySettings(monitor_token=TOKEN,
                                                       trusted_proxies=("testclient",)))
    clock = Clock()
    app.state.login_throttle = throttle.LoginThrottle(clock=clock)
    with TestClient(app) as client:
        yield client, secrets, engine, clock
    ingest.close()
    engine.dispose()


def _login(client, password=OPERATOR[1], **headers):
    return client.post("/api/v1/login", json={"username": OPERATOR[0], "password": password},
                       headers=headers)


# ---- finding 4: bodies limited per route, before they are read --------------------------------

@pytest.fixture
def live(shop):
    """The same app on a real HTTP port (uvicorn), for requests a test client cannot make: a
    declared size never sent, a chunked body that does not end."""
    client, _, _, _ = shop
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(client.app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(10)


def _raw(port, head, body_parts=()):
    """Sends a request head and body parts, never finishing the body; the status line the
    server answers with meanwhile."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        conn.sendall(head.encode())
        for part in body_parts:
            conn.sendall(part)
        answer = conn.recv(4096).decode("latin-1")
    return answer.split("\r\n", 1)[0], answer


def test_a_declared_oversized_body_is_refused_before_it_is_sent(live):
    for path, limit in (("/api/v1/customers/import", customers.MAX_IMPORT_BODY),
                        ("/api/v1/login", session.MAX_LOGIN_BYTES),
                        ("/api/v1/customers", 64 * 1024),
                        (protocol.HTTP_INGEST_PATH, protocol.MAX_BATCH_BYTES)):
        status, answer = _raw(live, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                                    "Content-Type: application/json\r\n\r\n" % (path, limit + 1))
        assert status.startswith("HTTP/1.1 413 "), (path, answer)
        assert "x-content-type-options: nosniff" in answer.lower()


def test_a_chunked_body_is_cut_off_at_the_route_limit(live):
    chunk = b"%x\r\n%s\r\n" % (1024, b"a" * 1024)
    head = ("PUT /api/v1/templates/%s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: application/json\r\n\r\n" % data.CORNER)
    # the route's limit plus one chunk, and the body never ends: answered all the same
    status, _ = _raw(live, head, [chunk] * (templates.MAX_TEMPLATE_BYTES // 1024 + 1))
    assert status.startswith("HTTP/1.1 413 ")


def test_bodies_within_the_limit_reach_the_route(shop):
    client, _, _, _ = shop
    auth = _basic(*OPERATOR)
    big_template = {"store": {"line": 0}, "note": "x" * (templates.MAX_TEMPLATE_BYTES - 1024)}
    assert client.put("/api/v1/templates/" + data.CORNER, json=big_template,
                      headers=auth).status_code == 422     # read and checked, not refused
    too_big = dict(big_template, note="x" * templates.MAX_TEMPLATE_BYTES)
    assert client.put("/api/v1/templates/" + data.CORNER, json=too_big,
                      headers=auth).status_code == 413
    rows = "member_id,name\n" + "".join("M%07d,Name %d\n" % (i, i) for i in range(20_000))
    assert len(rows) > 64 * 1024
    r = client.post("/api/v1/customers/import", files={"file": ("c.csv", rows)}, headers=auth)
    assert r.status_code == 200 and r.json()["imported"] == 20_000


# ---- findings 4 and 8: failed logins backed off, one scrypt whatever the name -----------------

def test_failed_logins_back_off_then_let_the_operator_in(shop):
    client, _, _, clock = shop
    for _ in range(throttle.FREE_FAILURES):
        assert _login(client, "wrong").status_code == 401
    refused = _login(client, "wrong")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert _login(client).status_code == 429        # not even checked while backing off
    clock.now += 1
    assert _login(client, "wrong").status_code == 401
    refused = _login(client, "wrong")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "2"
    # HTTP Basic is a login too: it backs off the same way
    assert client.get("/api/v1/me", headers=_basic(OPERATOR[0], "wrong")).status_code == 429
    clock.now += throttle.MAX_WAIT                  # a wait always ends: no lockout
    assert _login(client).status_code == 200
    assert _login(client, "wrong").status_code == 401   # counts start again after a login


def test_guessing_from_elsewhere_does_not_keep_the_operator_out():
    clock = Clock()
    gate = throttle.LoginThrottle(clock=clock)
    gate.succeeded("ops", "10.0.0.7")                # the operator's usual address
    for n in range(50):                             # an attacker from many addresses
        gate.failed("ops", "203.0.113.%d" % n)
    assert gate.wait("ops", "10.0.0.7") == 0
    assert gate.wait("ops", "198.51.100.1") == throttle.MAX_WAIT   # a new address waits
    for n in range(throttle.FREE_FAILURES + 3):         # other names from the operator's NAT
        gate.failed("admin%d" % n, "10.0.0.7")
    assert gate.wait("ops", "10.0.0.7") == 0
    assert gate.wait("someone-else", "10.0.0.7") == 8   # per address: 2 ** 3 s
    for _ in range(throttle.FREE_FAILURES + 1):         # but the operator's own name from there
        gate.failed("ops", "10.0.0.7")
    assert gate.wait("ops", "10.0.0.7") == 2
    clock.now += throttle.FORGET_AFTER + 1
    gate.failed("anyone", "10.0.0.7")
    assert gate.wait("anyone", "10.0.0.7") == 0          # old failures forgotten


def test_an_unknown_name_costs_the_same_one_scrypt_as_a_known_one(shop, monkeypatch):
    _, _, engine, _ = shop
    calls = []
    real = hashlib.scrypt

    def counted(*args, **kwargs):
        calls.append(kwargs["n"])
        return real(*args, **kwargs)

    operators.verify(engine, "nobody", "x")          # the dummy hash is made once
    monkeypatch.setattr(operators.hashlib, "scrypt", counted)
    for name, password in (("nobody", "guess"), (OPERATOR[0], "guess"), OPERATOR):
        calls.clear()
        operators.verify(engine, name, password)
        assert calls == [operators._SCRYPT[0]], name


# ---- finding 6: CSRF, security headers, Secure cookies ----------------------------------------

def _customer_count(client):
    return len(client.get("/api/v1/customers", headers=_basic(*OPERATOR)).json()["customers"])


def test_state_changing_requests_from_other_origins_are_refused(shop):
    client, secrets, _, _ = shop
    assert _login(client, **{"Sec-Fetch-Site": "same-origin"}).status_code == 200
    before = _customer_count(client)
    upload = {"file": ("c.csv", "member_id,name\n99999999,Mallory\n")}
    # another port of the same host is "same-site": SameSite=Strict lets the cookie through
    for headers in ({"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "http://testserver:8081"}, {"Origin": "null"}):
        r = client.post("/api/v1/customers/import", files=upload, headers=headers)
        assert r.status_code == 403, headers
        assert client.post("/api/v1/customers", json={"member_id": "98"},
                           headers=headers).status_code == 403
        assert client.post("/api/v1/logout", headers=headers).status_code == 403
        assert _login(client, **headers).status_code == 403       # login CSRF too
    assert _customer_count(client) == before
    # the dashboard's own requests, and scripts (no browser headers), go through
    r = client.post("/api/v1/customers/import", files=upload,
                    headers={"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"})
    assert r.status_code == 200 and r.json()["imported"] == 1
    assert client.post("/api/v1/customers", json={"member_id": "97"},
                       headers=_basic(*OPERATOR)).status_code == 200
    # devices authenticate with their credential, not a cookie: no origin check there
    r = client.post(protocol.HTTP_TELEMETRY_PATH, auth=(data.CORNER, secrets[data.CORNER]),
                    content=protocol.telemetry(data.CORNER, 1, 10, None, {"count": 0}, None,
                                               None, "0.1", {}),
                    headers={"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"})
    assert r.status_code == 200


def test_every_response_carries_the_security_headers(shop):
    client, _, _, _ = shop
    answers = [client.get("/dashboard/"), client.get("/dashboard/app.js"),
               client.get("/api/v1/me"), client.get("/nowhere"), client.get("/openapi.json"),
               client.get("/healthz"),
               client.post("/api/v1/logout", headers={"Sec-Fetch-Site": "cross-site"}),
               client.post("/api/v1/login", content=b"x" * (session.MAX_LOGIN_BYTES + 1))]
    assert [a.status_code for a in answers] == [200, 200, 401, 404, 200, 200, 403, 413]
    for a in answers:
        assert a.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "frame-ancestors 'none'" in a.headers["content-security-policy"]
        assert a.headers["x-frame-options"] == "DENY"
        assert a.headers["x-content-type-options"] == "nosniff"
        assert a.headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in a.headers     # plain HTTP here
    # no page of ours runs inline script, which the policy forbids
    assert "<script>" not in client.get("/dashboard/").text


def test_the_cookie_is_secure_behind_a_trusted_tls_proxy_only(shop, db_target):
    client, _, _, _ = shop
    assert "secure" not in _login(client).headers["set-cookie"].lower()
    behind_tls = _login(client, **{"X-Forwarded-Proto": "https"})
    assert "; secure" in behind_tls.headers["set-cookie"].lower()
    assert "max-age=31536000" in behind_tls.headers["strict-transport-security"]
    # the same header from a client that is not a trusted proxy changes nothing
    engine = database.make_engine(db_target.url, schema=db_target.schema)
    ingest = Ingest(engine)
    with TestClient(create_app(ingest)) as direct:
        answer = _login(direct, **{"X-Forwarded-Proto": "https"})
        assert answer.status_code == 200
        assert "secure" not in answer.headers["set-cookie"].lower()
    ingest.close()
    engine.dispose()


# ---- finding 7: CSV formula injection ----------------------------------------------------------

def test_csv_cells_a_spreadsheet_would_run_are_escaped():
    for text in ("=1+2", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(text) == "'" + text
    assert csv_cell("Bread") == "Bread" and csv_cell(Decimal("-1.20")) == "-1.20"
    body = csv_response([{"name": '=HYPERLINK("http://evil")', "amount": Decimal("-3.00")}],
                        "x.csv").body.decode()
    assert list(csv.reader(io.StringIO(body)))[1] == ["'=HYPERLINK(\"http://evil\")", "-3.00"]


def test_a_customer_name_with_a_formula_stays_text_in_the_report_csv(shop):
    client, _, _, _ = shop
    auth = _basic(*OPERATOR)
    r = client.post("/api/v1/customers/import", headers=auth, files={
        "file": ("c.csv", 'member_id,name\n11111111,"=HYPERLINK(""http://evil"",""x"")"\n')})
    assert r.json()["imported"] == 1
    answer = client.get("/api/v1/reports/customer_spend?format=csv", headers=auth)
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    names = [row["name"] for row in rows]
    assert "'=HYPERLINK(\"http://evil\",\"x\")" in names
    assert not any(n.startswith(("=", "+", "-", "@")) for n in names)


# ---- finding 12: /healthz, LIKE wildcards, OpenAPI ---------------------------------------------

def test_healthz_counters_only_for_monitoring_or_an_operator(shop):
    client, _, _, _ = shop
    assert client.get("/healthz").json() == {"ok": True}
    wrong = client.get("/healthz", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.json() == {"ok": True}
    assert "ingest" in client.get("/healthz",
                                  headers={"Authorization": "Bearer " + TOKEN}).json()
    assert "ingest" in client.get("/healthz", headers=_basic(*OPERATOR)).json()
    assert client.get("/healthz", headers=_basic(OPERATOR[0], "wrong")).json() == {"ok": True}
    _login(client)
    assert "ingest" in client.get("/healthz").json()


def test_search_wildcards_are_literal(shop):
    client, _, _, _ = shop
    auth = _basic(*OPERATOR)
    client.post("/api/v1/customers", json={"member_id": "50%_OFF", "name": "Percent"},
                headers=auth)

    def customers_found(q):
        found = client.get("/api/v1/customers", params={"q": q}, headers=auth).json()
        return sorted(c["name"] for c in found["customers"])

    assert customers_found("%") == ["Percent"]
    assert customers_found("_") == ["Percent"]
    assert customers_found("0%_o") == ["Percent"]
    assert customers_found("alice") == ["Alice Baker"]
    assert client.get("/api/v1/receipts", params={"q": "%"},
                      headers=auth).json()["receipts"] == []
    assert client.get("/api/v1/receipts", params={"q": "_"},
                      headers=auth).json()["receipts"] == []
    milk = client.get("/api/v1/receipts", params={"q": "MILK"}, headers=auth).json()
    assert sorted(r["seq"] for r in milk["receipts"]) == [1, 2]     # still a substring match


def test_the_openapi_schema_lists_what_routes_answer(shop):
    client, _, _, _ = shop
    paths = client.get("/openapi.json").json()["paths"]
    for path, methods in paths.items():
        for method, spec in methods.items():
            codes = set(spec["responses"])
            if path in (protocol.HTTP_INGEST_PATH, protocol.HTTP_TELEMETRY_PATH):
                assert {"400", "401", "413", "422", "503"} <= codes, path
            elif path != "/healthz":
                assert {str(c) for c in OPERATOR_RESPONSES} <= codes, (method, path)
    assert "404" in paths["/api/v1/receipts/{device_id}/{seq}"]["get"]["responses"]
    assert "404" in paths["/api/v1/reports/{name}"]["get"]["responses"]


def test_a_csv_with_bare_carriage_returns_or_a_huge_field_is_no_server_error(shop):
    """Found by schemathesis (test_api_fuzz.py): the csv module's errors answered 500."""
    client, _, _, _ = shop
    auth = _basic(*OPERATOR)
    r = client.post("/api/v1/customers/import", headers=auth,
                    files={"file": ("c.csv", "member_id,name\r77777777,Carriage Return\r")})
    assert r.status_code == 200 and r.json() == {"imported": 1, "errors": []}
    huge = 'member_id,name\n1,"%s"\n' % ("x" * 200_000)    # over the csv module's field limit
    r = client.post("/api/v1/customers/import", headers=auth, files={"file": ("c.csv", huge)})
    assert r.status_code == 422 and "malformed" in r.json()["detail"]


def test_a_seq_beyond_the_spool_is_refused_not_a_server_error(shop):
    """Found by schemathesis: a seq over the database's integer answered 500."""
    client, _, _, _ = shop
    auth = _basic(*OPERATOR)
    for seq in (2 ** 63, protocol.MAX_SEQ + 1, -1):
        assert client.get("/api/v1/receipts/%s/%d" % (data.CORNER, seq),
                          headers=auth).status_code == 422
        assert client.post("/api/v1/templates/%s/test" % data.CORNER, headers=auth,
                           json={"template": {}, "seq": seq}).status_code == 422
    assert client.get("/api/v1/receipts/%s/1" % data.CORNER, headers=auth).status_code == 200
