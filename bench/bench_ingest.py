"""Server ingest rate: receipts per second durably committed and acknowledged, with 100
simulated devices, over MQTT (private Mosquitto, password file + ACL) and over HTTP, against
`tilltap serve` on SQLite (WAL, synchronous=FULL). Also p50/p99 ACK latency per batch.

Each simulated device behaves like the firmware's uplink: one batch of BATCH records in flight,
the next one sent only after the app-level ack of the previous. The count of rows in the
database is checked at the end (every receipt stored once).

Target (2-core machine, SQLite): >= 2000 receipts/s over MQTT.
Quick mode (TILLTAP_BENCH_QUICK=1): 10 devices x 3 batches (600 receipts per transport).
"""
import asyncio
import json
import sys
import tempfile
import threading
import time

import httpx
import paho.mqtt.client as mqtt
from quick import size
from sqlalchemy import func, select

from tilltap.accounts import broker_files, devices
from tilltap.storage import database, schema
from tilltap_fw import protocol
from tilltap_fw.receipt import Receipt
from tilltap_host.broker import Broker
from tilltap_host.server_process import ServerProc

DEVICES = size(100, 10)
BATCH = 20
BATCHES = size(25, 3)  # per device and transport: 100 x 25 x 20 = 50,000 receipts each


def _body(device):
    r = Receipt()
    r.lines = ["TILLTAP BENCH STORE", "Till 3  Op 12", "2 x COFFEE        5.00",
               "1 x CROISSANT     2.20", "TOTAL             7.20", "CARD          7.20"]
    r.barcodes = [("CODE128", "R-000123456")]
    r.cut, r.end = "full", "cut"
    return protocol.encode_record(protocol.record_from_receipt(r, device, 1, 1000, False))


def _payload(device, body, batch_no):
    first = batch_no * BATCH + 1
    entries = [(s, [body]) for s in range(first, first + BATCH)]
    return bytes(protocol.joined(protocol.batch_parts(device, entries)))


def _percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def _report(name, count, seconds, latencies):
    print("%s_receipts_per_s: %.0f receipts/s%s" % (
        name, count / seconds, " (target >= 2000)" if name == "mqtt" else ""))
    print("%s_ack_latency_p50: %.1f ms" % (name, 1000 * _percentile(latencies, 0.50)))
    print("%s_ack_latency_p99: %.1f ms" % (name, 1000 * _percentile(latencies, 0.99)))


class MQTTDevice:
    """A paho client sending batches one at a time, each after the previous one's ack."""

    def __init__(self, device, secret, port, done):
        self.device, self.body, self.done = device, _body(device), done
        self.latencies, self.batch, self.sent_at = [], 0, 0.0
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device, clean_session=False,
                        protocol=mqtt.MQTTv311)
        c.username_pw_set(device, secret)
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(protocol.ack_topic(device), 1)
        c.on_subscribe = lambda cl, u, mid, rcs, p: self.ready.set()
        c.on_message = self._on_ack
        self.ready = threading.Event()
        self.client = c
        c.connect("127.0.0.1", port, keepalive=60)
        c.loop_start()

    def send(self):
        self.sent_at = time.perf_counter()
        self.client.publish(protocol.receipts_topic(self.device),
                            _payload(self.device, self.body, self.batch), qos=1)

    def _on_ack(self, client, userdata, msg):
        acked = protocol.parse_ack(msg.payload)[0]
        if acked and acked[-1] == (self.batch + 1) * BATCH:
            self.latencies.append(time.perf_counter() - self.sent_at)
            self.batch += 1
            if self.batch < BATCHES:
                self.send()
            else:
                self.done.release()

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def bench_mqtt(broker, secrets):
    done = threading.Semaphore(0)
    devs = [MQTTDevice(d, s, broker.port, done) for d, s in secrets.items()]
    for d in devs:
        d.ready.wait(30)
    start = time.perf_counter()
    for d in devs:
        d.send()
    for _ in devs:
        if not done.acquire(timeout=300):
            raise RuntimeError("MQTT devices did not finish")
    seconds = time.perf_counter() - start
    for d in devs:
        d.close()
    return seconds, [x for d in devs for x in d.latencies]


async def _http_device(client, url, device, secret, latencies):
    body = _body(device)
    for n in range(BATCHES):
        t0 = time.perf_counter()
        r = await client.post(url, content=_payload(device, body, n), auth=(device, secret),
                              headers={"Content-Type": "application/json"})
        r.raise_for_status()
        if r.json()["acked"][-1] != (n + 1) * BATCH:
            raise RuntimeError("incomplete ack")
        latencies.append(time.perf_counter() - t0)


async def _bench_http(server, secrets):
    latencies = []
    # Idle connections are dropped after 2 s, before uvicorn's keep-alive timeout (5 s) can
    # close one just as a request goes out on it (httpx.ReadError, the request not retried).
    limits = httpx.Limits(max_connections=DEVICES, keepalive_expiry=2)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        start = time.perf_counter()
        await asyncio.gather(*(_http_device(client, server.url + protocol.HTTP_INGEST_PATH, d, s,
                                            latencies) for d, s in secrets.items()))
        return time.perf_counter() - start, latencies


def main():
    with tempfile.TemporaryDirectory() as tmp:
        url = "sqlite:///%s/bench.db" % tmp
        engine = database.make_engine(url)
        mqtt_secrets = {"m%03d" % i: devices.add(engine, "m%03d" % i) for i in range(DEVICES)}
        http_secrets = {"h%03d" % i: devices.add(engine, "h%03d" % i) for i in range(DEVICES)}
        server_secret = devices.add(engine, "tilltap-server", role="server")
        broker_files.write(engine, tmp)
        broker = Broker(tmp, passwd_acl=(tmp + "/passwd", tmp + "/acl")).start()
        server = ServerProc(url, mqtt=(broker.port, "tilltap-server", server_secret),
                            log_path=tmp + "/server.log").start()
        try:
            seconds, lat = bench_mqtt(broker, mqtt_secrets)
            _report("mqtt", DEVICES * BATCHES * BATCH, seconds, lat)
            seconds, lat = asyncio.run(_bench_http(server, http_secrets))
            _report("http", DEVICES * BATCHES * BATCH, seconds, lat)
            with engine.connect() as conn:
                stored = conn.execute(select(func.count()).select_from(schema.receipts)).scalar()
            expected = 2 * DEVICES * BATCHES * BATCH
            print("stored_once: %d of %d receipts" % (stored, expected))
            print("server_counters: %s" % json.dumps(server.health()["ingest"]))
            return 0 if stored == expected else 1
        finally:
            server.stop()
            broker.stop()
            engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
