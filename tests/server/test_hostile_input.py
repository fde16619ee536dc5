"""Hostile input (issue 15): nothing a device or a request sends can stop, corrupt or fail the
processing of others. Each test is the regression test of one finding, on SQLite and
PostgreSQL (db_target), where NUL, integer widths and text encodings differ."""
import base64
import io
import json
import time
import zlib

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from tilltap.accounts import devices, operators
from tilltap.analysis import extraction
from tilltap.analysis.reports import REPORTS, ReportQuery
from tilltap.app import create_app
from tilltap.ingest.writer import Ingest, prepare
from tilltap.storage import database, schema
from tilltap_fw import protocol
from tilltap_fw.receipt import Receipt

DEV = "a1b2c3d4e5f6"
OTHER = "b2c3d4e5f6a1"
OPERATOR = ("ops", "correct horse battery")


def _record(seq, device=DEV, **changes):
    r = Receipt()
    r.lines = ["SHOP %s" % device[:4], "ITEM %d   1.00" % seq, "TOTAL 1.00"]
    r.cut, r.end = "full", "cut"
    rec = protocol.record_from_receipt(r, device, 1, int(time.time() * 1000), True, seq=seq)
    rec.update(changes)
    return rec


def _batch(records, device=DEV):
    return json.dumps({"v": 1, "device": device, "records": records}).encode()


def _raw(data, size=None, encoding="identity"):
    return {"encoding": encoding, "size": len(data) if size is None else size,
            "data": base64.b64encode(data).decode()}


@pytest.fixture
def setup(db_target):
    engine = database.make_engine(db_target.url, schema=db_target.schema)
    secrets = {d: devices.add(engine, d) for d in (DEV, OTHER)}
    operators.add(engine, *OPERATOR)
    ingest = Ingest(engine, check_devices=True)
    yield engine, ingest, secrets
    ingest.close()
    engine.dispose()


@pytest.fixture
def client(setup):
    engine, ingest, secrets = setup
    with TestClient(create_app(ingest), raise_server_exceptions=False) as c:
        yield c, engine, secrets


def _stored(engine, table=schema.receipts):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


# -- finding 1: one receipt stopped extraction for every device, and its detail answered 500

def test_nul_and_lone_surrogates_are_read_as_replacement_characters(client):
    """Lines, codes and board-extracted fields with NUL or lone surrogates: stored, extracted
    with the other device's receipts, shown (U+FFFD) and counted per device."""
    c, engine, secrets = client
    fields = {"total": "1.00", "subtotal": None, "currency": "E\ud800R", "receipt_no": "N\0 1",
              "datetime": None, "member_id": None, "payments": [],
              "items": [{"name": "TEA\0", "qty": None, "unit_price": None, "amount": "1.00"},
                        {"name": None, "name_raw": [["cp437", 0, "!not base64"]], "qty": None,
                         "unit_price": None, "amount": "2.00"}]}
    hostile = [_record(1, lines=["\ud800SHOP", "TOTAL 1.00"]),
               _record(2, lines=["A\0B", "TOTAL 1.00"]),
               _record(3, barcodes=[["CODE128", "M\0\udfff1"]], codes2d=[["QR", "\ud83d"]]),
               _record(4, lines=[], fields=fields)]
    for device, records in ((DEV, hostile), (OTHER, [_record(s, OTHER) for s in (1, 2)])):
        r = c.post(protocol.HTTP_INGEST_PATH, content=_batch(records, device),
                   auth=(device, secrets[device]))
        assert r.status_code == 200 and r.json() == {"acked": [rec["seq"] for rec in records]}
    assert extraction.extract_pending(engine) == 6
    assert _stored(engine, schema.extraction_errors) == 0
    details = {}
    for seq in (1, 2, 3, 4):
        r = c.get("/api/v1/receipts/%s/%d" % (DEV, seq), auth=OPERATOR)
        assert r.status_code == 200
        details[seq] = r.json()
    assert details[1]["lines"][0] == "\ufffdSHOP" and details[2]["lines"][0] == "A\ufffdB"
    assert details[3]["codes"] == [["CODE128", "M\ufffd\ufffd1"], ["QR", "\ufffd"]]
    assert (details[4]["currency"], details[4]["receipt_no"]) == ("E\ufffdR", "N\ufffd 1")
    assert [i["name"] for i in details[4]["items"]] == ["TEA\ufffd", None]
    fleet = {row["device_id"]: row for row in REPORTS["fleet"](engine, ReportQuery())}
    assert fleet[DEV]["text_replaced"] == 1 + 1 + 3 + 3 and fleet[OTHER]["text_replaced"] == 0
    assert c.get("/api/v1/reports/fleet", auth=OPERATOR).status_code == 200


def test_a_receipt_the_extractor_fails_on_is_marked_reported_and_skipped(client):
    """A receipt stored by an older server (its capture time far past year 9999) makes the
    extractor fail: it is kept in extraction_errors, shown on the fleet report and in its
    detail, skipped from then on, and every other receipt of its batch is extracted."""
    c, engine, _ = client
    rows, result = prepare(DEV, _batch([_record(s) for s in range(1, 6)]),
                           int(time.time() * 1000))
    assert result.error is None
    rows[2]["captured_at"] = rows[2]["record"]["captured_at"] = 2**62
    rows[2]["record"]["lines"] = []        # nothing printed: the capture time is the date
    with engine.begin() as conn:
        conn.execute(schema.receipts.insert(), [
            {k: v for k, v in r.items() if k != "text"} | {"received_at": database.utcnow()}
            for r in rows])
        conn.execute(schema.receipt_text.insert(),
                     [r["text"].row(r["device_id"], r["seq"]) for r in rows])
    assert extraction.extract_pending(engine) == 4
    with engine.connect() as conn:
        failed = conn.execute(select(schema.extraction_errors)).all()
        extracted = conn.execute(select(schema.receipt_fields.c.seq)
                                 .order_by(schema.receipt_fields.c.seq)).scalars().all()
    assert [(f.device_id, f.seq) for f in failed] == [(DEV, 3)] and extracted == [1, 2, 4, 5]
    assert "year" in failed[0].error
    assert extraction.extract_pending(engine) == 0       # skipped, not retried for ever
    assert extraction.failures(engine) == 1 and extraction.failures(engine, OTHER) == 0
    r = c.post(protocol.HTTP_INGEST_PATH, content=_batch([_record(9)]),
               auth=(DEV, client[2][DEV]))
    assert r.status_code == 200 and extraction.extract_pending(engine) == 1   # the rest go on
    fleet = {row["device_id"]: row for row in REPORTS["fleet"](engine, ReportQuery())}
    assert fleet[DEV]["extraction_errors"] == 1 and fleet[OTHER]["extraction_errors"] == 0
    detail = c.get("/api/v1/receipts/%s/3" % DEV, auth=OPERATOR)
    assert detail.status_code == 200 and "year" in detail.json()["extraction_error"]
    assert c.get("/api/v1/receipts/%s/1" % DEV, auth=OPERATOR).json()["extraction_error"] is None
    # a re-extraction tries it again; once it extracts, it is no failure any more
    with engine.begin() as conn:
        conn.execute(schema.receipts.update().where(schema.receipts.c.seq == 3)
                     .values(captured_at=1000, record=dict(rows[2]["record"], captured_at=1000,
                                                           time_synced=False)))
    assert extraction.reextract_all(engine) == 6
    assert _stored(engine, schema.extraction_errors) == 0


# -- finding 3: integers out of the storage's range passed validation and failed the commit

@pytest.mark.parametrize("changes,reason", [
    ({"boot": protocol.MAX_BOOT + 1}, "boot must be an integer"),
    ({"boot": 2**63}, "boot must be an integer"),
    ({"captured_at": protocol.MAX_CAPTURED_AT + 1, "time_synced": False}, "captured_at must"),
    ({"captured_at": 2**64, "time_synced": False}, "captured_at must"),
    ({"seq": protocol.MAX_SEQ + 1}, "seq must"),
])
def test_integers_past_the_storage_are_rejected_per_record(setup, changes, reason):
    engine, ingest, _ = setup
    bad = dict(_record(2), **changes)
    result = ingest.submit_batch(DEV, _batch([_record(1), bad])).result(30)
    assert result.acked == [1] and len(result.rejected) == 1
    assert reason in result.rejected[0][1]
    assert _stored(engine) == 1


def test_the_largest_valid_integers_are_stored(setup):
    """Validation's ranges fit both databases: the edge values commit."""
    engine, ingest, _ = setup
    edge = _record(protocol.MAX_SEQ, boot=protocol.MAX_BOOT,
                   captured_at=protocol.MAX_CAPTURED_AT, time_synced=False)
    assert ingest.submit_batch(DEV, _batch([edge])).result(30).acked == [protocol.MAX_SEQ]
    with engine.connect() as conn:
        row = conn.execute(select(schema.receipts)).one()
    assert (row.boot, row.captured_at) == (protocol.MAX_BOOT, protocol.MAX_CAPTURED_AT)


def test_one_devices_bad_batch_fails_no_other_devices_batch(setup):
    """40 devices' batches in one group commit, one of them with out-of-range integers: that
    device's records are rejected, all the others are stored (the probe saw 34 of 40 fail)."""
    engine, ingest, _ = setup
    names = ["dev%02d" % n for n in range(40)]
    for name in names:
        devices.add(engine, name)
    payloads = {name: _batch([_record(s, name) for s in range(5)], name) for name in names}
    payloads["dev07"] = _batch([_record(s, "dev07", boot=2**31 + s) for s in range(5)],
                               "dev07")
    futures = {name: ingest.submit_batch(name, body) for name, body in payloads.items()}
    results = {name: f.result(60) for name, f in futures.items()}
    assert results["dev07"].acked == [] and len(results["dev07"].rejected) == 5
    assert all(results[n].acked == list(range(5)) for n in names if n != "dev07")
    assert _stored(engine) == 39 * 5


def test_a_record_the_database_refuses_is_rejected_alone(setup):
    """The writer's own defence, for a value validation did not catch (here put in by hand
    after validation): a group whose commit fails is committed again job by job and the
    refused batch record by record, so only that record is rejected and nothing else fails."""
    from concurrent.futures import Future
    engine, ingest, _ = setup
    rows, result = prepare(DEV, _batch([_record(s) for s in range(3)]), int(time.time() * 1000))
    rows[1]["boot"] = 2**63      # no database stores it
    fut: Future = Future()
    other = ingest.submit_batch(OTHER, _batch([_record(s, OTHER) for s in range(3)], OTHER))
    ingest._queue.put(("batch", DEV, rows, result, fut, None))
    later = ingest.submit_batch(OTHER, _batch([_record(s, OTHER) for s in range(3, 6)], OTHER))
    refused = fut.result(30)
    assert refused.acked == [0, 2] and [s for s, _ in refused.rejected] == [1]
    assert refused.rejected[0][1].startswith("not storable: ")
    assert other.result(30).acked == [0, 1, 2] and later.result(30).acked == [3, 4, 5]
    assert _stored(engine) == 2 + 6
    assert ingest.stats()["unstorable_records"] == 1 and ingest.stats()["db_errors"] == 0


# -- finding 9: ingest edge cases

def _deep(levels):
    return (b'{"v":1,"device":"%s","records":' % DEV.encode() + b"[" * levels + b"]" * levels +
            b"}")


def test_deep_json_is_refused_with_400_over_http_and_for_mqtt(client):
    c, engine, secrets = client
    for levels in (1000, 100000):
        r = c.post(protocol.HTTP_INGEST_PATH, content=_deep(levels), auth=(DEV, secrets[DEV]))
        assert r.status_code == 400 and "nested too deep" in r.json()["error"]
    # the MQTT consumer hands the payload to the same call: a refusal, not an exception
    ingest = c.app.state.ingest
    assert "nested too deep" in ingest.submit_batch(DEV, _deep(5000)).result(30).error
    assert _stored(engine) == 0 and ingest.stats()["db_errors"] == 0


def test_bad_base64_and_size_mismatch_are_refused_per_record(setup):
    engine, ingest, _ = setup
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = deflate.compress(b"\x1b@SHOP\n" * 100) + deflate.flush()
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    bombed = bomb.compress(bytes(protocol.MAX_RAW_BYTES + 1)) + bomb.flush()
    records = [
        _record(1, raw=_raw(b"\x1b@SHOP\n")),
        _record(2, raw=dict(_raw(b"abc"), data="!!!garbage")),
        _record(3, raw=dict(_raw(b"abc"), data="QUJD!")),
        _record(4, raw=_raw(b"abc", size=999999)),
        _record(5, raw=_raw(b"abc", size=5)),
        _record(6, raw=_raw(packed, size=700, encoding="deflate")),
        _record(7, raw=_raw(packed, size=699, encoding="deflate")),
        _record(8, raw=_raw(packed[:-3], size=700, encoding="deflate")),
        _record(9, raw=_raw(bombed, size=protocol.MAX_RAW_BYTES, encoding="deflate")),
    ]
    result = ingest.submit_batch(DEV, _batch(records)).result(30)
    assert result.acked == [1, 6]
    reasons = dict(result.rejected)
    assert sorted(reasons) == [2, 3, 4, 5, 7, 8, 9]
    assert "bad base64" in reasons[2] and "bad base64" in reasons[3]
    assert "size 0..%d" % protocol.MAX_RAW_BYTES in reasons[4]
    assert "3 bytes, raw.size says 5" in reasons[5]
    assert "more than 699" in reasons[7] and "truncated" in reasons[8]
    assert "more than %d" % protocol.MAX_RAW_BYTES in reasons[9]
    with engine.connect() as conn:
        raws = dict(conn.execute(select(schema.receipts.c.seq, schema.receipts.c.raw)).all())
    assert raws == {1: b"\x1b@SHOP\n", 6: packed}


def test_a_seq_twice_in_a_batch_is_handled_as_across_batches(setup):
    engine, ingest, _ = setup
    same = _record(1)
    result = ingest.submit_batch(DEV, _batch([same, same, _record(2)])).result(30)
    assert result.acked == [1, 2] and result.rejected == [] and result.new == 2
    other = _record(3, lines=["OTHER SHOP", "TOTAL 9.00"])
    result = ingest.submit_batch(DEV, _batch([_record(3), other])).result(30)
    assert result.acked == [3] and result.new == 1
    with engine.connect() as conn:
        kept = conn.execute(select(schema.seq_conflicts.c.seq, schema.seq_conflicts.c.record)
                            ).all()
    assert [(k.seq, k.record["lines"][0]) for k in kept] == [(3, "OTHER SHOP")]
    assert ingest.stats()["seq_conflicts"] == 1 and _stored(engine) == 3


def test_a_seq_is_in_exactly_one_of_acked_and_rejected(setup):
    engine, ingest, _ = setup
    result = ingest.submit_batch(DEV, _batch([_record(4), _record(4, v=7), _record(5, v=7)])
                                 ).result(30)
    assert result.acked == [4] and [s for s, _ in result.rejected] == [5]
    ack = json.loads(result.ack_payload())
    assert set(ack["acked"]).isdisjoint(r["seq"] for r in ack["rejected"])
    assert ingest.stats()["rejected_records"] == 2 and _stored(engine) == 1


# -- finding 10: parameter values that answered 500

@pytest.mark.parametrize("path,status", [
    ("/api/v1/customers?offset=%d" % 2**63, 422),
    ("/api/v1/customers?offset=%d" % 2**31, 422),
    ("/api/v1/reports/silent_printers?hours=%d" % 2**31, 422),
    ("/api/v1/reports/silent_printers?hours=%d" % 2**63, 422),
    ("/api/v1/receipts/%s/%d" % (DEV, 2**63), 422),
    ("/api/v1/receipts/%s/-1" % DEV, 422),
    ("/api/v1/receipts?q=a%00b", 400),
    ("/api/v1/receipts?device=a%00b", 400),
    ("/api/v1/receipts/a%00b/1", 400),
    ("/api/v1/customers?q=%00", 400),
    ("/api/v1/reports/fleet?store=%00", 400),
    ("/api/v1/reports/a%00", 400),
    ("/api/v1/templates/a%00b", 400),
    ("/api/v1/reports/sales_by_day?to=9999-12-31", 422),
    ("/api/v1/receipts?from=9999-12-31&to=9999-12-31", 422),
])
def test_no_parameter_value_answers_500(client, path, status):
    c, _, _ = client
    assert c.get(path, auth=OPERATOR).status_code == status


def test_the_last_date_allowed_works_in_every_report(client):
    c, _, _ = client
    last = "from=9998-12-31&to=9998-12-31"
    for name in sorted(REPORTS):
        assert c.get("/api/v1/reports/%s?%s" % (name, last), auth=OPERATOR).status_code == 200
    assert c.get("/api/v1/receipts?" + last, auth=OPERATOR).status_code == 200


def test_nul_or_lone_surrogates_in_bodies_answer_4xx(client):
    c, _, _ = client
    nul_user = {"Authorization": "Basic " + base64.b64encode(b"op\0s:x").decode()}
    assert c.get("/api/v1/customers", headers=nul_user).status_code == 401
    for body in (b'{"username": "o\\u0000ps", "password": "x"}',
                 b'{"username": "o\\ud800ps", "password": "x"}'):
        r = c.post("/api/v1/login", content=body, headers={"Content-Type": "application/json"})
        assert 400 <= r.status_code < 500
    for body in (b'{"member_id": "M\\u00001"}', b'{"member_id": "M1", "name": "\\udc00"}',
                 b'{"member_id": "M1", "attributes": {"tier": "g\\u0000"}}'):
        r = c.post("/api/v1/customers", content=body, auth=OPERATOR,
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and "NUL or an unpaired surrogate" in r.json()["detail"]
    r = c.put("/api/v1/templates/" + "x" * 65, json={}, auth=OPERATOR)
    assert r.status_code == 422
    r = c.post("/api/v1/templates/%s/test" % DEV, json={"template": {}, "seq": 2**63},
               auth=OPERATOR)
    assert r.status_code == 422


def test_a_csv_row_with_a_nul_is_refused_and_the_valid_rows_kept(client):
    c, engine, _ = client
    csv_text = "member_id,name,tier\nM1,Ann,gold\nM2,B\0b,\nM3,Cy,\nM4,Di,s\0lver\n"
    r = c.post("/api/v1/customers/import", auth=OPERATOR,
               files={"file": ("customers.csv", io.BytesIO(csv_text.encode()))})
    assert r.status_code == 200
    assert r.json() == {"imported": 2, "errors": [
        {"row": 3, "error": "name holds a NUL or an unpaired surrogate"},
        {"row": 5, "error": "attributes holds a NUL or an unpaired surrogate"}]}
    with engine.connect() as conn:
        assert conn.execute(select(schema.customers.c.member_id).order_by(
            schema.customers.c.member_id)).scalars().all() == ["M1", "M3"]
