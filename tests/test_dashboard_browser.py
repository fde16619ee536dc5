"""The dashboard in a real browser: headless Debian Chromium driven by Selenium against the API
served by uvicorn (as `tilltap serve` runs it) on SQLite and PostgreSQL.

Skips with the reason when chromium, chromedriver or selenium are missing
(apt-get install -y chromium chromium-driver; pip install selenium).
"""
import shutil
import socket
import threading
import time

import pytest
import uvicorn

import analysis_data as data
from dbtarget import db_target  # noqa: F401  (fixture)
from tilltap import analysis_api, api, db, operators
from tilltap.ingest import Ingest

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as seen  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="chromium and chromium-driver not installed")
OPERATOR = ("ops", "correct horse battery")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(db_target):
    """The ingest app with the dashboard on a real HTTP port, over the known shop data."""
    engine = db.make_engine(db_target.url, schema=db_target.schema)
    data.load(engine)
    operators.add(engine, *OPERATOR)
    ingest = Ingest(engine, check_devices=True)
    app = api.create_app(ingest)
    analysis_api.install(app, engine)
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
    engine.dispose()


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1400,1000", "--user-data-dir=%s" % (tmp_path / "profile")):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    yield driver
    driver.quit()


def test_login_search_receipt_and_chart(server, browser):
    wait = WebDriverWait(browser, 15, ignored_exceptions=(StaleElementReferenceException,))
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
