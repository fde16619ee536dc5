"""Hostile payloads over MQTT (issue 15, findings 1, 3 and 9) through a private Mosquitto into
a real `tilltap serve`, on SQLite and PostgreSQL: JSON nested too deep, text with NUL and lone
surrogates, a batch whose every record is refused. The consumer answers each (an ack with the
refused seqs, or nothing for a refused batch), and the device's next batch is stored and
acked as usual."""
import json
import queue

import paho.mqtt.client as mqtt
from sqlalchemy import select

from tilltap.accounts import broker_files, devices
from tilltap.storage import database, schema
from tilltap_fw import protocol
from tilltap_host.broker import Broker
from tilltap_host.server_process import ServerProc

DEV = "d1"


def _batch(records):
    return json.dumps({"v": 1, "device": DEV, "records": records}).encode()


def _record(seq, **changes):
    rec = {"v": 1, "device": DEV, "seq": seq, "boot": 0, "captured_at": 0, "time_synced": False,
           "lines": ["SHOP", "TOTAL 1.00"], "barcodes": [], "codes2d": [], "images": [],
           "cut": None, "end": "cut", "drawer": False}
    rec.update(changes)
    return rec


def test_hostile_batches_over_mqtt_are_answered_and_stop_nothing(db_target, tmp_path):
    engine = database.make_engine(db_target.url, schema=db_target.schema)
    secret = devices.add(engine, DEV)
    server_secret = devices.add(engine, "tilltap-server", role="server")
    broker_files.write(engine, str(tmp_path))
    broker = Broker(tmp_path, passwd_acl=(str(tmp_path / "passwd"),
                                          str(tmp_path / "acl"))).start()
    server = ServerProc(db_target.url, db_target.schema,
                        mqtt=(broker.port, "tilltap-server", server_secret),
                        client_id="tilltap-hostile", log_path=str(tmp_path / "server.log"))
    acks: queue.Queue = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=DEV)
    try:
        server.start()
        client.username_pw_set(DEV, secret)
        client.on_message = lambda cl, u, msg: acks.put(json.loads(msg.payload))
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        client.subscribe(protocol.ack_topic(DEV), 1)

        def publish(payload):
            client.publish(protocol.receipts_topic(DEV), payload, qos=1).wait_for_publish(10)

        deep = b'{"v":1,"device":"d1","records":' + b"[" * 5000 + b"]" * 5000 + b"}"
        publish(deep)                                           # refused whole: no ack
        publish(_batch([_record(1, boot=2**31), _record(2, captured_at=2**63)]))
        assert acks.get(timeout=30) == {"acked": [], "rejected": [
            {"seq": 1, "error": "boot must be an integer 0..%d" % protocol.MAX_BOOT},
            {"seq": 2, "error": "captured_at must be an integer 0..%d"
             % protocol.MAX_CAPTURED_AT}]}
        publish(_batch([_record(3, lines=["\ud800SHOP", "A\u0000B"]), _record(4)]))
        assert acks.get(timeout=30) == {"acked": [3, 4]}
        with engine.connect() as conn:
            text = conn.execute(select(schema.receipt_text.c.lines).where(
                schema.receipt_text.c.seq == 3)).scalar()
        assert text == ["\ufffdSHOP", "A\ufffdB"]
        counts = server.health()["ingest"]
        # the deep one, and the one with no valid record
        assert counts["rejected_batches"] == 2 and counts["rejected_records"] == 2
        assert counts["db_errors"] == 0 and counts.get("mqtt_errors", 0) == 0
    finally:
        client.loop_stop()
        client.disconnect()
        server.stop()
        broker.stop()
        engine.dispose()
