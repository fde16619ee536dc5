"""The dashboard in a real browser: headless Debian Chromium driven by Selenium against the API
served by uvicorn (as `tilltap serve` runs it) on SQLite and PostgreSQL.

Skips with the reason when chromium, chromedriver or selenium are missing
(apt-get install -y chromium chromium-driver; pip install selenium).
"""
import http.server
import json
import shutil
import socket
import threading
import time

import analysis_data as data
import httpx
import pytest
import uvicorn

from tilltap.accounts import devices, operators
from tilltap.analysis import extraction as analysis
from tilltap.app import create_app
from tilltap.ingest.writer import Ingest
from tilltap.storage import database
from tilltap.storage.schema import customers
from tilltap_fw import protocol
from tilltap_fw.receipt import NOT_PRINTED, Receipt

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as seen  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                 reason="chromium and chromium-driver not installed")]
OPERATOR = ("ops", "correct horse battery")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def engine(db_target):
    """The known shop data with an operator."""
    engine = database.make_engine(db_target.url, schema=db_target.schema)
    data.load(engine)
    operators.add(engine, *OPERATOR)
    yield engine
    engine.dispose()


@pytest.fixture
def server(engine):
    """The ingest app with the dashboard on a real HTTP port, over the known shop data."""
    ingest = Ingest(engine, check_devices=True)
    app = create_app(ingest)
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield "http://127.0.0.1:%d" % port
    uv.should_exit = True
    thread.join(10)
    ingest.close()


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1400,1000",
                 "--user-data-dir=%s" % (tmp_path / "profile")):
        options.add_argument(flag)
    # the console, where Chromium reports what the Content-Security-Policy blocked
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    yield driver
    driver.quit()


def _wait(browser):
    return WebDriverWait(browser, 15, ignored_exceptions=(StaleElementReferenceException,))


def _login(browser, server):
    wait = _wait(browser)
    browser.get(server + "/dashboard/")
    wait.until(seen.visibility_of_element_located((By.ID, "login-form")))
    browser.find_element(By.ID, "username").send_keys(OPERATOR[0])
    browser.find_element(By.ID, "password").send_keys(OPERATOR[1])
    browser.find_element(By.ID, "login-button").click()
    wait.until(seen.visibility_of_element_located((By.ID, "overview")))
    return wait


def test_login_search_receipt_and_chart(server, browser):
    wait = _wait(browser)
    browser.get(server + "/dashboard/")
    wait.until(seen.visibility_of_element_located((By.ID, "login-form")))
    browser.find_element(By.ID, "username").send_keys(OPERATOR[0])
    browser.find_element(By.ID, "password").send_keys("wrong password")
    browser.find_element(By.ID, "login-button").click()
    wait.until(seen.text_to_be_present_in_element((By.ID, "login-error"), "Wrong"))
    browser.find_element(By.ID, "password").clear()
    browser.find_element(By.ID, "password").send_keys(OPERATOR[1])
    browser.find_element(By.ID, "login-button").click()
    wait.until(seen.visibility_of_element_located((By.ID, "overview")))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#sales-chart svg rect"))

    browser.get(server + "/dashboard/#receipts")
    wait.until(seen.visibility_of_element_located((By.ID, "receipt-search")))
    browser.find_element(By.ID, "receipt-q").send_keys("1005")
    browser.find_element(By.CSS_SELECTOR, "#receipt-search button").click()
    def only_the_found_receipt(d):
        # the page first lists the newest receipts, then the search answer replaces them
        rows = d.find_elements(By.CSS_SELECTOR, "#receipt-results tbody tr")
        return rows if len(rows) == 1 and "1005" in rows[0].text else None

    rows = wait.until(only_the_found_receipt)
    rows[0].click()
    wait.until(seen.text_to_be_present_in_element((By.CSS_SELECTOR, "pre.receipt"), "Coffee"))
    assert browser.find_element(By.CSS_SELECTOR, "pre.receipt").text.startswith("CORNER SHOP")

    browser.get(server + "/dashboard/#reports")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#report-table tbody tr"))
    bars = browser.find_elements(By.CSS_SELECTOR, "#report-chart svg rect.bar")
    assert len(bars) == 4  # sales_by_day: two days x two stores
    assert all(float(b.get_attribute("height")) > 1 for b in bars)
    assert "2026-03-02" in browser.find_element(By.ID, "report-table").text

    browser.get(server + "/dashboard/#fleet")
    wait.until(seen.text_to_be_present_in_element((By.ID, "fleet-table"), data.IDLE))
    assert "SILENT" in browser.find_element(By.ID, "fleet-table").text
    # every page above ran under the server's Content-Security-Policy without a violation
    blocked = [e["message"] for e in browser.get_log("browser")
               if "Content Security Policy" in e["message"]]
    assert blocked == []


# A page of another site on the same host (another port: "same-site", so the SameSite=Strict
# cookie goes along) posting a customer import with the operator's cookie (issue 15, finding 6).
HOSTILE_PAGE = """<!doctype html><title>waiting</title><script>
var form = new FormData();
form.append("file", new Blob(["member_id,name\\n66666666,Mallory\\n"]), "c.csv");
fetch("%s/api/v1/customers/import", {method: "POST", mode: "no-cors", credentials: "include",
                                     body: form})
  .then(function () { document.title = "sent"; }, function () { document.title = "sent"; });
</script>"""
IMPORT_FROM_OUR_PAGE = """var form = new FormData(), done = arguments[0];
form.append("file", new Blob(["member_id,name\\n77777777,Operator\\n"]), "c.csv");
fetch("/api/v1/customers/import", {method: "POST", body: form})
  .then(function (r) { done(r.status); });"""


@pytest.fixture
def hostile_site(server):
    page = (HOSTILE_PAGE % server).encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d/" % site.server_address[1]
    site.shutdown()


def test_another_port_of_the_host_cannot_import_customers(engine, server, hostile_site, browser):
    def member_ids():
        with engine.connect() as conn:
            return {m for (m,) in conn.execute(customers.select().with_only_columns(
                customers.c.member_id))}

    _login(browser, server)
    browser.get(hostile_site)
    _wait(browser).until(lambda d: d.title == "sent")
    assert "66666666" not in member_ids()
    # the same request from the dashboard's own page goes through
    browser.get(server + "/dashboard/")
    assert browser.execute_async_script(IMPORT_FROM_OUR_PAGE) == 200
    assert "77777777" in member_ids()


# A printer whose total line the built-in rules do not know: they take the cash tendered (20.00)
# for the total, until a layout template says which line holds it.
ODD_SEQ, ODD_NO = 6, "1010"
ODD_LINES = ["CORNER SHOP", "Receipt No: " + ODD_NO, "Date: 2026-03-04 12:00",
             "Bread" + " " * 33 + "2.50", "Cheese" + " " * 32 + "9.90",
             "Member price" + " " * 25 + "11.40", "Cash" + " " * 33 + "20.00"]


@pytest.fixture
def odd_receipt(engine):
    r = Receipt()
    r.lines = list(ODD_LINES)
    r.cut, r.end = "full", "cut"
    record = protocol.record_from_receipt(r, data.CORNER, 1, int(time.time() * 1000), True,
                                          seq=ODD_SEQ)
    ingest = Ingest(engine, check_devices=True)
    try:
        payload = json.dumps({"v": 1, "device": data.CORNER, "records": [record]}).encode()
        assert ingest.submit_batch(data.CORNER, payload).result(30).acked == [ODD_SEQ]
    finally:
        ingest.close()
    analysis.extract_pending(engine)
    return data.CORNER, ODD_SEQ


def test_build_layout_template_by_clicking_the_receipt(engine, odd_receipt, server, browser):
    device, seq = odd_receipt
    api = httpx.Client(base_url=server, auth=OPERATOR, timeout=10)
    receipt_path = "/api/v1/receipts/%s/%d" % (device, seq)
    assert api.get(receipt_path).json()["total"] == "20.00"  # built-in rules: wrong
    assert api.get("/api/v1/templates/" + device).status_code == 404

    wait = _login(browser, server)
    browser.get(server + "/dashboard/#receipts")
    wait.until(seen.visibility_of_element_located((By.ID, "receipt-search")))
    browser.find_element(By.ID, "receipt-q").send_keys(ODD_NO)
    browser.find_element(By.CSS_SELECTOR, "#receipt-search button").click()

    def only_the_found_receipt(d):
        rows = d.find_elements(By.CSS_SELECTOR, "#receipt-results tbody tr")
        return rows if len(rows) == 1 and ODD_NO in rows[0].text else None

    wait.until(only_the_found_receipt)[0].click()
    wait.until(seen.text_to_be_present_in_element((By.CSS_SELECTOR, "pre.receipt"),
                                                  "Member price"))
    wait.until(lambda d: d.find_element(By.ID, "tpl-json").get_attribute("value").strip())
    line = next(span for span in browser.find_elements(By.CSS_SELECTOR, "pre.receipt .rline")
                if span.text.startswith("Member price"))
    line.click()
    assert "picked" in line.get_attribute("class")
    assert browser.find_element(By.ID, "tpl-value").get_attribute("value") == "11.40"
    Select(browser.find_element(By.ID, "tpl-field")).select_by_value("total")
    browser.find_element(By.ID, "tpl-add").click()
    # the draft, run on this receipt by the server: the template finds 11.40
    wait.until(seen.text_to_be_present_in_element((By.ID, "tpl-result"), "11.40"))
    draft = json.loads(browser.find_element(By.ID, "tpl-json").get_attribute("value"))
    assert list(draft["fields"]) == ["total"]
    browser.find_element(By.ID, "tpl-save").click()
    # saved, re-extracted, and the receipt shown again with the total from the template
    wait.until(seen.text_to_be_present_in_element((By.ID, "tpl-status"), "saved"))
    wait.until(seen.text_to_be_present_in_element((By.ID, "receipt-facts"), "11.40"))

    stored = api.get("/api/v1/templates/" + device)
    assert stored.status_code == 200 and stored.json()["template"] == draft
    deadline = time.monotonic() + 15
    while api.get(receipt_path).json()["total"] != "11.40":
        assert time.monotonic() < deadline, "receipt not re-extracted with the template"
        time.sleep(0.1)
    assert api.get(receipt_path).json()["total"] == "11.40"
    # the other receipts of the printer keep their totals (the template finds nothing there)
    assert api.get("/api/v1/receipts/%s/1" % device).json()["total"] == "6.20"
    api.close()


@pytest.fixture
def failing_printer(engine):
    """The corner tap's printer went away mid-job: one receipt not printed, the printer
    unreachable in its last telemetry; two records the server refused set aside on the tap,
    and an operator asked for them again."""
    r = Receipt()
    r.lines = ["CORNER SHOP", "Receipt No: 1011", "Date: 2026-03-04 13:00",
               "Bread" + " " * 33 + "2.50", "TOTAL" + " " * 33 + "2.50"]
    r.status = NOT_PRINTED
    record = protocol.record_from_receipt(r, data.CORNER, 1, int(time.time() * 1000), True,
                                          seq=7)
    printer = {"jobs": 3, "reachable": False, "error": "ECONNREFUSED", "not_printed": 1}
    report = protocol.telemetry(data.CORNER, 1, 60000, 50000, {"count": 0, "refused": 2},
                                None, printer, "test", {})
    devices.request_retry_refused(engine, data.CORNER)
    ingest = Ingest(engine, check_devices=True)
    try:
        payload = json.dumps({"v": 1, "device": data.CORNER, "records": [record]}).encode()
        assert ingest.submit_batch(data.CORNER, payload).result(30).acked == [7]
        ingest.submit_telemetry(data.CORNER, report).result(30)
    finally:
        ingest.close()
    analysis.extract_pending(engine)


def test_a_failing_printer_and_its_unprinted_receipt_are_shown(engine, failing_printer, server,
                                                              browser):
    wait = _login(browser, server)
    browser.get(server + "/dashboard/#fleet")
    wait.until(seen.text_to_be_present_in_element((By.ID, "fleet-table"), "UNREACHABLE"))
    assert "ECONNREFUSED" in browser.find_element(By.ID, "fleet-table").text
    heads = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#fleet-table th")]
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "#fleet-table tbody tr")
               if data.CORNER in r.text)
    cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    assert cells[heads.index("refused")] == "2 (retry asked)"

    browser.get(server + "/dashboard/#receipts")
    wait.until(seen.visibility_of_element_located((By.ID, "receipt-search")))
    browser.find_element(By.ID, "receipt-q").send_keys("1011")
    browser.find_element(By.CSS_SELECTOR, "#receipt-search button").click()

    def only_the_found_receipt(d):
        rows = d.find_elements(By.CSS_SELECTOR, "#receipt-results tbody tr")
        return rows if len(rows) == 1 and "1011" in rows[0].text else None

    row = wait.until(only_the_found_receipt)[0]
    assert "not printed" in row.text
    row.click()
    wait.until(seen.text_to_be_present_in_element((By.ID, "receipt-detail"), "Not printed"))
