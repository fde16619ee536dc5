"""Server ingest (validate, store once, ack after commit), device registry and HTTP API, against
a real SQLite file and a real PostgreSQL (each test runs on both)."""
import base64
import json
import threading
import time
import zlib

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from tilltap.accounts import broker_files, devices
from tilltap.analysis import reports
from tilltap.api.security import SecuritySettings
from tilltap.app import create_app
from tilltap.ingest.writer import Ingest, prepare
from tilltap.storage import database, schema
from tilltap_fw import protocol
from tilltap_fw.receipt import Receipt

DEV = "a1b2c3d4e5f6"
MONITOR_TOKEN = "monitoring-token-of-the-test"


def _record(seq, device=DEV, **changes):
    r = Receipt()
    r.lines = ["SHOP", "ITEM %d" % seq, "TOTAL 1.00"]
    r.cut, r.end = "full", "cut"
    raw = b"\x1b@SHOP\nITEM %d\n\x1dV\x00" % seq
    comp = zlib.compressobj(9, zlib.DEFLATED, -10)
    rec = protocol.record_from_receipt(r, device, 1, int(time.time() * 1000), True, raw=raw,
                                       raw_deflated=comp.compress(raw) + comp.flush(), seq=seq)
    rec.update(changes)
    return rec


def _batch(records, device=DEV):
    return json.dumps({"v": 1, "device": device, "records": records}).encode()


@pytest.fixture
def setup(db_target):
    engine = database.make_engine(db_target.url, schema=db_target.schema)
    secret = devices.add(engine, DEV)
    ingest = Ingest(engine, check_devices=True)
    yield engine, ingest, secret
    ingest.close()
    engine.dispose()


def _count(engine, device=DEV):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(schema.receipts).where(
            schema.receipts.c.device_id == device)).scalar()


def test_a_resent_batch_is_acked_again_and_stored_once(setup):
    engine, ingest, _ = setup
    payload = _batch([_record(s) for s in range(10)])
    first = ingest.submit_batch(DEV, payload).result(30)
    again = ingest.submit_batch(DEV, payload).result(30)
    assert first.acked == again.acked == list(range(10))
    assert first.new == 10 and again.new == 0
    assert _count(engine) == 10
    assert ingest.stats()["stored"] == 10 and ingest.stats()["duplicates"] == 10


def test_a_reused_seq_with_other_content_is_kept_not_dropped(setup):
    """A reflashed device starts its seqs again: its new receipts must not vanish as dupes."""
    engine, ingest, _ = setup
    ingest.submit_batch(DEV, _batch([_record(s) for s in range(3)])).result(30)
    wiped = [_record(s, lines=["OTHER SHOP", "NEW RECEIPT %d" % s], captured_at=s + 7)
             for s in range(2)]
    for _ in range(2):   # resent: stored once in seq_conflicts too
        result = ingest.submit_batch(DEV, _batch(wiped)).result(30)
        assert result.acked == [0, 1] and result.new == 0
    assert ingest.stats()["seq_conflicts"] == 2
    with engine.connect() as conn:
        kept = conn.execute(select(schema.seq_conflicts)
                            .order_by(schema.seq_conflicts.c.seq)).all()
        stored = conn.execute(select(schema.receipts.c.record).where(
            schema.receipts.c.seq == 0)).scalar()
    assert [k.record["lines"][1] for k in kept] == ["NEW RECEIPT 0", "NEW RECEIPT 1"]
    assert stored["lines"][1] == "ITEM 0"     # the first receipt with that seq is untouched
    assert _count(engine) == 3


def test_raw_bytes_are_stored_as_sent_and_inflate(setup):
    engine, ingest, _ = setup
    ingest.submit_batch(DEV, _batch([_record(3)])).result(30)
    with engine.connect() as conn:
        row = conn.execute(select(schema.receipts).where(schema.receipts.c.seq == 3)).one()
    assert row.raw_encoding == "deflate"
    assert zlib.decompress(row.raw, -15) == b"\x1b@SHOP\nITEM 3\n\x1dV\x00"
    assert row.record["lines"][1] == "ITEM 3" and "raw" not in row.record
    assert row.time_synced is True and row.boot == 1


def test_the_ack_callback_runs_after_the_commit(setup):
    engine, ingest, _ = setup
    seen = []

    def on_done(result):
        # A separate connection: only committed rows are visible to it.
        seen.append((result.acked, _count(engine)))

    ingest.submit_batch(DEV, _batch([_record(s) for s in range(5)]), on_done).result(30)
    assert seen == [(list(range(5)), 5)]


def test_mixed_batch_stores_the_good_records_and_names_the_bad(setup):
    engine, ingest, _ = setup
    future = int(time.time() * 1000) + protocol.MAX_FUTURE_SKEW_MS + 60000
    big = _record(5)
    big["lines"] = ["x" * 1000] * (protocol.MAX_RECORD_BYTES // 1000 + 1)
    records = [_record(1), _record(2, v=7), _record(3, captured_at=future), {"seq": 4},
               big, _record(6, lines="oops"), _record(7), "junk", _record(8, device="ffff")]
    result = ingest.submit_batch(DEV, _batch(records)).result(30)
    assert result.acked == [1, 7]
    reasons = dict(result.rejected)
    assert "unknown version" in reasons[2]
    assert "future" in reasons[3]
    assert "missing field" in reasons[4]
    assert "larger than" in reasons[5]
    assert "lines" in reasons[6]
    assert "another device" in reasons[8]
    assert "JSON object" in reasons[None]
    assert _count(engine) == 2
    assert ingest.stats()["rejected_records"] == 7


@pytest.mark.parametrize("payload,reason", [
    (b"\x00not json", "not JSON"),
    (b'{"v": 2, "device": "a1b2c3d4e5f6", "records": []}', "unknown version"),
    (_batch([_record(1)], device="ffff"), "does not match"),
    (b'{"v": 1, "device": "a1b2c3d4e5f6", "records": 5}', "records must be a list"),
])
def test_bad_envelopes_store_nothing(setup, payload, reason):
    engine, ingest, _ = setup
    result = ingest.submit_batch(DEV, payload).result(30)
    assert reason in result.error and result.acked == []
    assert _count(engine) == 0


def test_unknown_and_revoked_devices_change_nothing(setup):
    engine, ingest, _ = setup
    result = ingest.submit_batch("ffff", _batch([_record(1, "ffff")], "ffff")).result(30)
    assert result.error == "unknown or revoked device" and result.acked == []
    devices.revoke(engine, DEV)
    result = ingest.submit_batch(DEV, _batch([_record(1)])).result(30)
    assert result.error == "unknown or revoked device" and result.acked == []
    assert _count(engine) == 0 and _count(engine, "ffff") == 0


def test_concurrent_resends_from_two_writers_store_once(setup, db_target):
    """Two Ingest writers (as two server processes would) race on the same seqs."""
    engine, ingest, _ = setup
    other_engine = database.make_engine(db_target.url, schema=db_target.schema)
    other = Ingest(other_engine, check_devices=True)
    try:
        futures = []

        def hammer(ing):
            for start in range(0, 200, 20):
                futures.append(ing.submit_batch(
                    DEV, _batch([_record(s) for s in range(start, start + 20)])))

        threads = [threading.Thread(target=hammer, args=(i,)) for i in (ingest, other) * 2]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results = [f.result(60) for f in futures]
        assert all(r.error is None and len(r.acked) == 20 for r in results)
        assert sum(r.new for r in results) == 200
        assert _count(engine) == 200
    finally:
        other.close()
        other_engine.dispose()


def test_telemetry_keeps_the_latest_report(setup):
    engine, ingest, _ = setup
    stats = {"count": 3, "bytes": 10, "dropped": 1, "dropped_ranges": [(4, 4)]}
    for uptime in (1000, 2000):
        payload = protocol.telemetry(DEV, 1, uptime, 5000, stats, 10, None, "0.1", {})
        assert ingest.submit_telemetry(DEV, payload).result(30).error is None
    assert ingest.submit_telemetry(DEV, b"{}").result(30).error
    with engine.connect() as conn:
        rows = conn.execute(select(schema.telemetry)).all()
    assert len(rows) == 1 and rows[0].report["uptime_ms"] == 2000
    assert rows[0].report["dropped_ranges"] == [[4, 4]]


def test_a_retry_refused_request_goes_with_telemetry_answers_until_the_device_did_it(setup):
    engine, ingest, _ = setup

    def answer(retried=None):
        payload = protocol.telemetry(DEV, 1, 10, None, {"count": 0, "refused": 2}, None, None,
                                     "0.1", {"retried": retried})
        return ingest.submit_telemetry(DEV, payload).result(30).retry_refused

    assert answer() is None  # nothing asked
    with pytest.raises(devices.DeviceError):
        devices.request_retry_refused(engine, "unknown-tap")
    assert devices.request_retry_refused(engine, DEV) == 1
    assert answer() == 1 and answer(retried=None) == 1  # again until the device did it
    assert answer(retried=1) is None and answer() is None  # done: not sent any more
    assert devices.request_retry_refused(engine, DEV) == 2
    assert answer(retried=1) == 2  # a rebooted device still gets the new request
    fleet = {r["device_id"]: r for r in reports.fleet(engine, reports.ReportQuery())}
    assert fleet[DEV]["refused"] == 2 and fleet[DEV]["retry_pending"]
    assert answer(retried=2) is None
    fleet = {r["device_id"]: r for r in reports.fleet(engine, reports.ReportQuery())}
    assert not fleet[DEV]["retry_pending"]


def test_registry_hashes_and_mosquitto_files(setup):
    engine, _, secret = setup
    server_secret = devices.add(engine, "tilltap-server", role="server")
    devices.add(engine, "b2")
    devices.revoke(engine, "b2")
    assert devices.verify(engine, DEV, secret)
    assert not devices.verify(engine, DEV, secret + "x")
    assert not devices.verify(engine, "b2", secret)
    assert not devices.verify(engine, "tilltap-server", server_secret)  # not a device
    assert devices.verify(engine, "tilltap-server", server_secret, role="server")
    with pytest.raises(devices.DeviceError):
        devices.add(engine, DEV)
    with pytest.raises(devices.DeviceError):
        devices.add(engine, "Bad/ID")
    with pytest.raises(devices.DeviceError):
        devices.revoke(engine, "b2")
    passwd, acl = broker_files.texts(engine)
    users = [line.split(":", 1)[0] for line in passwd.splitlines()]
    assert users == [DEV, "tilltap-server"]  # the revoked one is gone
    for line in passwd.splitlines():
        _, iterations, salt, digest = line.split(":", 1)[1].split("$")[1:]
        assert iterations == "101" and len(base64.b64decode(salt)) == 12
        assert len(base64.b64decode(digest)) == 64
    assert "pattern write tilltap/%u/receipts" in acl
    assert "pattern read tilltap/%u/ack" in acl
    assert "user tilltap-server\ntopic read tilltap/+/receipts" in acl
    assert [d["id"] for d in devices.list_all(engine)] == ["a1b2c3d4e5f6", "b2",
                                                           "tilltap-server"]


# -- HTTP API (in-process ASGI client; the real server process is in test_delivery_e2e.py)


@pytest.fixture
def http(setup):
    engine, ingest, secret = setup
    app = create_app(ingest, settings=SecuritySettings(monitor_token=MONITOR_TOKEN))
    with TestClient(app) as client:
        yield client, engine, secret


def _post(client, body, user=DEV, secret=None, path=protocol.HTTP_INGEST_PATH):
    auth = (user, secret) if secret is not None else None
    return client.post(path, content=body, auth=auth,
                       headers={"Content-Type": "application/json"})


def test_http_ingest_acks_what_it_committed(http):
    client, engine, secret = http
    r = _post(client, _batch([_record(1), _record(2, v=9)]), secret=secret)
    assert r.status_code == 200
    assert r.json() == {"acked": [1], "rejected": [{"seq": 2, "error": "unknown version 9"}]}
    assert _post(client, _batch([_record(1)]), secret=secret).json() == {"acked": [1]}
    assert _count(engine) == 1


def test_http_refuses_bad_credentials_and_changes_nothing(http):
    client, engine, secret = http
    body = _batch([_record(1)])
    for user, pw in ((DEV, "wrong"), ("ffff", secret), (DEV, "")):
        r = _post(client, body, user, pw)
        assert r.status_code == 401 and "credential" in r.json()["error"]
    assert client.post(protocol.HTTP_INGEST_PATH, content=body).status_code == 401
    devices.revoke(engine, DEV)
    assert _post(client, body, secret=secret).status_code == 401
    assert _count(engine) == 0


def test_http_bad_payloads_get_4xx_with_a_reason(http):
    client, engine, secret = http
    r = _post(client, b"{not json", secret=secret)
    assert r.status_code == 400 and r.json()["error"] == "not JSON"
    r = _post(client, b" " * (protocol.MAX_BATCH_BYTES + 1), secret=secret)
    assert r.status_code == 413 and "Too Large" in r.text
    assert client.get("/healthz", headers={"Authorization": "Bearer " + MONITOR_TOKEN}
                      ).json()["ingest"]["rejected_batches"] == 1
    r = _post(client, _batch([_record(1, v=3)]), secret=secret)
    assert r.status_code == 422 and r.json()["rejected"][0]["error"] == "unknown version 3"
    r = _post(client, b'{"v": 1}', secret=secret, path=protocol.HTTP_TELEMETRY_PATH)
    assert r.status_code == 400
    assert _count(engine) == 0


def test_http_telemetry_and_health(http):
    client, engine, secret = http
    payload = protocol.telemetry(DEV, 1, 10, None, {"count": 0}, None, None, "0.1", {})
    r = _post(client, payload, secret=secret, path=protocol.HTTP_TELEMETRY_PATH)
    assert r.status_code == 200 and r.json() == {"ok": True}
    number = devices.request_retry_refused(engine, DEV)
    r = _post(client, payload, secret=secret, path=protocol.HTTP_TELEMETRY_PATH)
    assert protocol.parse_answer(r.content) == ([], [], number)
    health = client.get("/healthz", headers={"Authorization": "Bearer " + MONITOR_TOKEN}).json()
    assert health["ok"] and health["ingest"]["telemetry"] == 2


def _undecoded_record(seq):
    """A record as the board sends a GB18030 line it cannot decode, and a NUL from a bad
    device."""
    rec = _record(seq)
    rec["lines"] = ["SHOP", None, "TOTAL 1.00", "A\u0000B"]
    data = base64.b64encode("合计 1.00".encode("gb18030")).decode()
    rec["raw_lines"] = [[1, [["gb18030", 0, data]]]]
    return rec


def test_undecoded_lines_are_decoded_at_ingest_and_the_record_kept_as_sent(setup):
    engine, ingest, _ = setup
    rec = _undecoded_record(1)
    assert ingest.submit_batch(DEV, _batch([rec])).result(30).acked == [1]
    with engine.connect() as conn:
        stored = conn.execute(select(schema.receipts.c.record)).scalar()
        text = conn.execute(select(schema.receipt_text)).one()
    assert stored["lines"] == rec["lines"] and stored["raw_lines"] == rec["raw_lines"]
    assert text.lines == ["SHOP", "合计 1.00", "TOTAL 1.00", "A\ufffdB"]
    assert (text.undecodable, text.replaced) == (0, 1)


def test_a_migration_decodes_the_receipts_stored_before(setup):
    """Receipts stored by a server that did not decode (no receipt_text rows) get their text
    once, when `tilltap serve` starts; a second start does nothing."""
    from tilltap.storage import migrations
    engine, _, _ = setup
    rows, result = prepare(
        DEV, _batch([_undecoded_record(s) for s in (1, 2)]), int(time.time() * 1000))
    assert result.error is None
    with engine.begin() as conn:
        conn.execute(schema.receipts.insert(),
                     [dict(r, received_at=database.utcnow()) for r in rows])
    assert migrations.migrate(engine) == ["receipt_text", "receipt_status"]
    with engine.connect() as conn:
        lines = [r.lines for r in conn.execute(select(schema.receipt_text))]
    assert lines == [["SHOP", "合计 1.00", "TOTAL 1.00", "A\ufffdB"]] * 2
    assert migrations.migrate(engine) == []


def test_a_migration_adds_the_receipt_status_to_an_older_database(setup):
    """receipt_fields of a database from before receipts had a status get the columns, and
    the receipts analysed before count as complete."""
    from sqlalchemy import inspect, text

    from tilltap.analysis import extraction
    from tilltap.storage import migrations
    engine, ingest, _ = setup
    assert ingest.submit_batch(DEV, _batch([_record(1)])).result(30).acked == [1]
    extraction.extract_pending(engine)
    schema_name = engine.get_execution_options().get("schema_translate_map", {}).get(None)
    table = ('"%s".receipt_fields' % schema_name) if schema_name else "receipt_fields"
    with engine.begin() as conn:
        for column in ("status", "reason"):
            conn.execute(text("ALTER TABLE %s DROP COLUMN %s" % (table, column)))
    assert migrations.add_receipt_status(engine) == 2
    columns = {c["name"] for c in inspect(engine).get_columns("receipt_fields",
                                                              schema=schema_name)}
    assert {"status", "reason"} <= columns
    with engine.connect() as conn:
        assert conn.execute(select(schema.receipt_fields.c.status)).scalars().all() == \
            ["complete"]
    assert migrations.add_receipt_status(engine) == 0


def test_the_mqtt_share_group_is_named_from_the_server_credential():
    from tilltap.ingest.mqtt import share_group
    group = share_group("server secret")
    assert group == share_group("server secret")  # every process of the account: one group
    assert group.startswith(protocol.SHARE_GROUP + "-") and len(group) > 40
    assert share_group("another secret") != group
    assert share_group(None) == protocol.SHARE_GROUP  # anonymous broker: nothing to hide
