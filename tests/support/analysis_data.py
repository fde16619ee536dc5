"""A small known shop dataset for the analysis tests: receipts whose reports are worked out by
hand, stored through the real ingest path (protocol records, Ingest.submit_batch)."""
import json
import time

from tilltap.accounts import devices
from tilltap.analysis import crm
from tilltap.analysis import extraction as analysis
from tilltap.ingest.writer import Ingest
from tilltap_fw import protocol
from tilltap_fw.receipt import Receipt

CORNER, BAKERY, IDLE = "tap-corner", "tap-bakery", "tap-idle"
DEVICES = (CORNER, BAKERY, IDLE)

# (device, seq, receipt no, printed date-time, item lines, total, payment, extra lines)
RECEIPTS = [
    (CORNER, 1, "1001", "2026-03-02 10:15", [("2 x Bread", "5.00"), ("Milk", "1.20")], "6.20",
     "Card", ["Member: 11111111"]),
    (CORNER, 2, "1002", "2026-03-02 11:40", [("Milk", "1.20")], "1.20", "Cash", []),
    (CORNER, 3, "1005", "2026-03-03 10:05", [("Coffee", "3.00")], "3.00", "Card",
     ["Member: 11111111"]),
    (CORNER, 4, "1006", "2026-03-03 18:30", [("Milk", "-1.20")], "-1.20", "Cash", ["REFUND"]),
    (CORNER, 5, "1007", "2026-03-03 19:00", [("Bread", "2.50")], "2.50", "Cash", ["VOID"]),
    (BAKERY, 1, "501", "2026-03-02 09:00", [("Croissant", "1.50"), ("Coffee", "3.00")], "4.50",
     "Cash", ["Member: 22222222"]),
    (BAKERY, 2, "502", "2026-03-03 09:30", [("Croissant", "1.50")], "1.50", "Card",
     ["Tel: 0170 1234567"]),
]
STORES = {CORNER: "CORNER SHOP", BAKERY: "BAKERY"}

CUSTOMERS_CSV = (
    "member_id,phone,name,email,tier\n"
    "11111111,,Alice Baker,alice@example.org,gold\n"
    "22222222,,Bob Miller,bob@example.org,\n"
    ",+49 170 1234567,Carol Chen,,silver\n"
)


def receipt_lines(no, printed, items, total, payment, extra):
    """The receipt as the tap decodes it: 42 columns, store name first."""
    width = 42
    pad = lambda left, right: left + " " * max(2, width - len(left) - len(right)) + right  # noqa: E731
    return [None, "Receipt No: %s" % no, "Date: %s" % printed] + \
        [pad(name, amount) for name, amount in items] + \
        [pad("TOTAL", total), pad(payment, total)] + extra


def record(device, seq, no, printed, items, total, payment, extra):
    r = Receipt()
    r.lines = receipt_lines(no, printed, items, total, payment, extra)
    r.lines[0] = STORES[device]
    r.cut, r.end = "full", "cut"
    return protocol.record_from_receipt(r, device, 1, int(time.time() * 1000), True, seq=seq)


def load(engine):
    """Registers the taps, stores the receipts through Ingest, imports the customers and
    extracts everything; returns the device credentials."""
    secrets = {d: devices.add(engine, d) for d in DEVICES}
    ingest = Ingest(engine, check_devices=True)
    try:
        for device in (CORNER, BAKERY):
            records = [record(*spec) for spec in RECEIPTS if spec[0] == device]
            payload = json.dumps({"v": 1, "device": device, "records": records}).encode()
            result = ingest.submit_batch(device, payload).result(30)
            assert result.acked == [r["seq"] for r in records], result.rejected
    finally:
        ingest.close()
    analysis.extract_pending(engine)
    imported, errors = crm.import_csv(engine, CUSTOMERS_CSV)
    assert (imported, errors) == (3, [])
    return secrets
