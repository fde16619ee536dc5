"""Operator API: login required, device credentials refused, reports as JSON and CSV,
customers, receipt search, templates (SQLite and PostgreSQL)."""
import base64
import csv
import io

import analysis_data as data
import pytest
from starlette.testclient import TestClient

from tilltap.accounts import operators
from tilltap.app import create_app
from tilltap.ingest.writer import Ingest
from tilltap.storage import database

OPERATOR = ("ops", "correct horse battery")


def _basic(user, password):
    token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    return {"Authorization": "Basic " + token}


@pytest.fixture
def shop(db_target):
    engine = database.make_engine(db_target.url, schema=db_target.schema)
    secrets = data.load(engine)
    operators.add(engine, *OPERATOR)
    ingest = Ingest(engine, check_devices=True)
    app = create_app(ingest)
    with TestClient(app) as client:
        yield client, secrets
    ingest.close()
    engine.dispose()


@pytest.mark.parametrize("path", ["/api/v1/reports/sales_by_day", "/api/v1/customers",
                                  "/api/v1/receipts", "/api/v1/templates/" + data.CORNER])
def test_login_required_and_device_credentials_refused(shop, path):
    client, secrets = shop
    assert client.get(path).status_code == 401
    assert "Basic" in client.get(path).headers["www-authenticate"]
    dashboard = client.get(path, headers={"X-TillTap-Dashboard": "1"})
    assert dashboard.headers.get("www-authenticate") is None
    assert client.get(path, headers=_basic(data.CORNER, secrets[data.CORNER])).status_code == 401
    assert client.get(path, headers=_basic(OPERATOR[0], "wrong password")).status_code == 401
    assert client.get(path, headers=_basic(*OPERATOR)).status_code in (200, 404)


def test_session_cookie_login_and_logout(shop):
    client, _ = shop
    assert client.post("/api/v1/login",
                       json={"username": "ops", "password": "nope"}).status_code == 401
    assert client.post("/api/v1/login",
                       json={"username": "ops", "password": OPERATOR[1]}).status_code == 200
    assert client.get("/api/v1/me").json() == {"username": "ops"}
    client.post("/api/v1/logout")
    assert client.get("/api/v1/me").status_code == 401


def test_reports_as_json_and_csv(shop):
    client, _ = shop
    auth = _basic(*OPERATOR)
    assert "receipt_gaps" in client.get("/api/v1/reports", headers=auth).json()["reports"]
    got = client.get("/api/v1/reports/sales_by_day?from=2026-03-02&to=2026-03-02",
                     headers=auth).json()
    assert got["rows"] == [
        {"day": "2026-03-02", "store": "BAKERY", "receipts": 1, "sales": "4.50"},
        {"day": "2026-03-02", "store": "CORNER SHOP", "receipts": 2, "sales": "7.40"}]
    answer = client.get("/api/v1/reports/top_items?format=csv&store=BAKERY", headers=auth)
    assert answer.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(answer.text))) == [
        ["name", "qty", "amount", "receipts"], ["Coffee", "1.000", "3.00", "1"],
        ["Croissant", "2.000", "3.00", "2"]]
    assert client.get("/api/v1/reports/nope", headers=auth).status_code == 404
    assert client.get("/api/v1/reports/refunds?from=March", headers=auth).status_code == 422


def test_customers_receipts_and_templates(shop):
    client, _ = shop
    auth = _basic(*OPERATOR)
    listed = client.get("/api/v1/customers?q=alice", headers=auth).json()["customers"]
    assert [(c["name"], c["visits"], c["spend"]) for c in listed] == [("Alice Baker", 2, "9.20")]
    assert client.post("/api/v1/customers", json={"member_id": "777", "name": "Gus"},
                       headers=auth).status_code == 200
    assert client.post("/api/v1/customers", json={"name": "no key"},
                       headers=auth).status_code == 422
    upload = client.post("/api/v1/customers/import", headers=auth, files={
        "file": ("c.csv", b"member_id,name,email\n888,Hal,\n,Ivy,\n", "text/csv")}).json()
    assert upload == {"imported": 1,
                      "errors": [{"row": 3, "error": "needs a member_id or a phone"}]}

    found = client.get("/api/v1/receipts?q=croissant", headers=auth).json()["receipts"]
    assert sorted(r["receipt_no"] for r in found) == ["501", "502"]
    only = client.get("/api/v1/receipts?device=%s&from=2026-03-03" % data.CORNER,
                      headers=auth).json()
    assert sorted(r["receipt_no"] for r in only["receipts"]) == ["1005", "1006", "1007"]
    one = client.get("/api/v1/receipts/%s/1" % data.CORNER, headers=auth).json()
    assert one["lines"][0] == "CORNER SHOP" and one["total"] == "6.20"
    assert [i["name"] for i in one["items"]] == ["Bread", "Milk"]
    assert client.get("/api/v1/receipts/%s/99" % data.CORNER, headers=auth).status_code == 404

    path = "/api/v1/templates/" + data.BAKERY
    assert client.get(path, headers=auth).status_code == 404
    bad = client.put(path, json={"fields": {"nope": {"line": 0}}}, headers=auth)
    assert bad.status_code == 422 and "unknown field" in bad.json()["detail"]
    template = {"fields": {"store": {"pattern": "^Receipt No: (?P<value>\\d+)"}}}
    assert client.put(path, json=template, headers=auth).status_code == 200
    assert client.get(path, headers=auth).json()["template"] == template
    again = client.get("/api/v1/receipts/%s/1" % data.BAKERY, headers=auth).json()
    assert again["store"] == "501"  # re-extracted with the template


def test_template_test_runs_a_draft_on_a_stored_receipt(shop):
    client, _ = shop
    auth = _basic(*OPERATOR)
    path = "/api/v1/templates/%s/test" % data.CORNER
    draft = {"fields": {"total": {"pattern": "^Receipt No: (?P<value>\\d+)"},
                        "cashier": {"line": 0}, "tax": {"pattern": "^nothing here"}}}
    got = client.post(path, json={"template": draft, "seq": 1}, headers=auth).json()
    assert got["template"] == {"total": "1001", "cashier": "CORNER SHOP", "tax": None}
    assert got["fields"]["total"] == "1001" and got["fields"]["store"] == "CORNER SHOP"
    assert [i["name"] for i in got["fields"]["items"]] == ["Bread", "Milk"]
    items = {"items": {"pattern": "^(?P<name>Milk)\\s+(?P<amount>\\S+)$"}, "fields": {}}
    got = client.post(path, json={"template": items, "seq": 1}, headers=auth).json()
    assert got["template"]["items"][0]["name"] == "Milk"
    bad = client.post(path, json={"template": {"fields": {"nope": {"line": 0}}}, "seq": 1},
                      headers=auth)
    assert bad.status_code == 422 and "unknown field" in bad.json()["detail"]
    assert client.post(path, json={"template": draft, "seq": 99}, headers=auth).status_code == 404
    assert client.post(path, json={"template": draft, "seq": 1}).status_code == 401
    # nothing stored, nothing re-extracted
    assert client.get("/api/v1/templates/" + data.CORNER, headers=auth).status_code == 404
    receipt = client.get("/api/v1/receipts/%s/1" % data.CORNER, headers=auth).json()
    assert receipt["total"] == "6.20"


def test_dashboard_files_are_served_and_confined(shop):
    client, _ = shop
    assert client.get("/dashboard/").status_code == 200
    assert "<html" in client.get("/dashboard/index.html").text.lower()
    assert client.get("/dashboard/../analysis.py").status_code == 404
    assert client.get("/dashboard/%2e%2e/analysis.py").status_code == 404
