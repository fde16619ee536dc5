"""Uplink state machine (firmware/uplink.py) over the real spool and scripted transports, on
CPython and the MicroPython unix port. Time is the `now` handed to step(): no clocks, no sleeps.

The transports here stand in for the network only; the real MQTT and HTTP transports run
against a real broker and server in tests/test_delivery_e2e.py.
"""
import errno
import json

import fwtest

from tilltap_fw import protocol, protocol_check
from tilltap_fw.spool import Spool
from tilltap_fw.uplink import TooLarge, TransportError, Uplink

DEV = "a1b2c3d4e5f6"
FIRST = 1  # the first seq of a new spool


class Server:
    """What a correct server does with a batch: store once per seq, ack everything stored."""

    def __init__(self):
        self.stored = {}
        self.batches = []
        self.refuse = set()
        self.retry = None  # an operator's retry_refused request, sent with every answer

    def handle(self, payload):
        """The answer to a batch (as protocol.parse_answer() reads it)."""
        batch = protocol_check.parse_batch(bytes(protocol.joined(payload)), DEV)
        self.batches.append([r["seq"] for r in batch["records"]])
        acked, rejected = [], []
        for rec in batch["records"]:
            if rec["seq"] in self.refuse:
                rejected.append((rec["seq"], "refused"))
                continue
            assert protocol_check.validate_record(rec, DEV) is None
            self.stored.setdefault(rec["seq"], rec)
            acked.append(rec["seq"])
        return protocol.parse_ack(protocol_check.encode_ack(acked, rejected, self.retry))


class HTTPLike:
    """Answers each send with the ack (like an HTTP 2xx), or fails while `down`."""

    def __init__(self, server):
        self.server = server
        self.down = False
        self.closed = 0
        self.telemetry = []

    def connect(self):
        pass

    def close(self):
        self.closed += 1

    def send(self, payload):
        if self.down:
            raise OSError(errno.ECONNREFUSED)
        return self.server.handle(payload)

    def send_telemetry(self, payload):
        if self.down:
            raise OSError(errno.ECONNREFUSED)
        self.telemetry.append(json.loads(payload))

    def poll(self, wait_ms=0):
        return None


class MQTTLike(HTTPLike):
    """send() is the broker's PUBACK only; acks arrive later through poll() when released."""

    def __init__(self, server):
        HTTPLike.__init__(self, server)
        self.held = []
        self.released = []

    def send(self, payload):
        if self.down:
            raise OSError(errno.ETIMEDOUT)
        self.held.append(self.server.handle(payload))

    def release(self):
        self.released += self.held
        self.held = []

    def poll(self, wait_ms=0):
        if not self.released:
            return None
        answer = ([], [], None)
        for acked, refused, retry in self.released:
            answer = (answer[0] + acked, answer[1] + refused, retry)
        self.released = []
        return answer


def _spool(n, size=300):
    """A spool holding n records; the tests use seqs relative to the first one (FIRST)."""
    d = fwtest.tmpdir("uplink")
    sp = Spool(d, compress=False)
    assert sp.stats()["next_seq"] == FIRST
    for i in range(n):
        rec = {"v": 1, "device": DEV, "boot": 1, "captured_at": i, "time_synced": False,
               "lines": ["receipt %d" % i, "x" * size], "barcodes": [], "codes2d": [],
               "images": [], "cut": "full", "end": "cut", "drawer": False}
        sp.append(protocol.encode_record(rec))
    return sp, d


def _seqs(n):
    return list(range(FIRST, FIRST + n))


def _rand(bits):
    return (1 << bits) - 1  # the top of the jitter range: delays are exact in tests


def _run(up, now, steps):
    for _ in range(steps):
        now += up.step(now) or 1
    return now


def test_http_delivers_everything_in_order_and_empties_the_spool():
    sp, d = _spool(45)
    try:
        server = Server()
        up = Uplink(sp, HTTPLike(server), DEV, batch_count=10, rand=_rand)
        _run(up, 0, 20)
        assert sorted(server.stored) == _seqs(45)
        flat = [s for b in server.batches for s in b]
        assert flat == _seqs(45)  # in order, each once
        assert max(len(b) for b in server.batches) == 10
        assert sp.stats()["count"] == 0
        assert up.stats()["acked"] == 45
    finally:
        fwtest.rmtree(d)


def test_batches_are_bounded_by_bytes():
    sp, d = _spool(12, size=1500)
    try:
        server = Server()
        up = Uplink(sp, HTTPLike(server), DEV, batch_count=50, batch_bytes=4096, rand=_rand)
        _run(up, 0, 20)
        assert sorted(server.stored) == _seqs(12)
        assert max(len(b) for b in server.batches) == 2  # two ~1.7 KB records fit in 4 KiB
    finally:
        fwtest.rmtree(d)


def test_mqtt_puback_deletes_nothing_only_the_ack_message_does():
    sp, d = _spool(5)
    try:
        server = Server()
        t = MQTTLike(server)
        up = Uplink(sp, t, DEV, batch_count=10, ack_timeout_ms=1000, rand=_rand)
        now = _run(up, 0, 5)  # published, PUBACKed, stored by the server, ack not out yet
        assert sorted(server.stored) == _seqs(5)
        assert sp.stats()["count"] == 5
        assert up.stats()["in_flight"] == 5
        t.release()
        _run(up, now, 1)
        assert sp.stats()["count"] == 0 and up.stats()["in_flight"] == 0
    finally:
        fwtest.rmtree(d)


def test_lost_ack_resends_and_late_ack_still_deletes():
    sp, d = _spool(3)
    try:
        server = Server()
        t = MQTTLike(server)
        up = Uplink(sp, t, DEV, batch_count=10, ack_timeout_ms=1000, backoff_min_ms=100,
                    rand=_rand)
        up.step(0)
        t.held = []  # the server's ack is lost
        now = _run(up, 0, 200)  # past the ack timeout: backoff, then the same batch again
        assert server.batches[0] == server.batches[1] == _seqs(3)
        assert up.stats()["ack_timeouts"] >= 1 and up.stats()["resent"] >= 3
        assert len(server.stored) == 3  # the server stores once; the device just resends
        assert sp.stats()["count"] == 3
        t.release()
        _run(up, now, 2)
        assert sp.stats()["count"] == 0
    finally:
        fwtest.rmtree(d)


def test_backoff_grows_exponentially_is_capped_and_resets_after_success():
    sp, d = _spool(2)
    try:
        server = Server()
        t = HTTPLike(server)
        t.down = True
        up = Uplink(sp, t, DEV, backoff_min_ms=100, backoff_max_ms=1000, rand=_rand)
        now, waits = 0, []
        for _ in range(7):
            wait = up.step(now)
            waits.append(wait)
            now += wait
        assert waits == [100, 200, 400, 800, 1000, 1000, 1000]
        assert t.closed == 7 and sp.stats()["count"] == 2
        t.down = False
        up.step(now)
        assert sp.stats()["count"] == 0
        t.down = True
        sp.append(b'{"v":1}')
        assert up.step(now + 1) == 100  # the exponent restarted after the success
    finally:
        fwtest.rmtree(d)


def test_jitter_spreads_retries_within_half_to_full_backoff():
    sp, d = _spool(1)
    try:
        t = HTTPLike(Server())
        t.down = True
        seen = set()
        for r in (0, 1 << 15, (1 << 16) - 1):
            up = Uplink(sp, t, DEV, backoff_min_ms=1000, rand=lambda bits, r=r: r)
            wait = up.step(0)
            assert 500 <= wait <= 1000
            seen.add(wait)
        assert len(seen) == 3
    finally:
        fwtest.rmtree(d)


def test_refused_record_is_set_aside_not_resent_and_offered_again_on_request():
    sp, d = _spool(6)
    try:
        server = Server()
        poison = FIRST + 2
        server.refuse = {poison}
        t = HTTPLike(server)
        up = Uplink(sp, t, DEV, batch_count=3, telemetry_ms=1000, rand=_rand)
        now = _run(up, 0, 30)
        assert sorted(server.stored) == [s for s in _seqs(6) if s != poison]
        assert sum(b.count(poison) for b in server.batches) == 1  # no loop on a poison record
        stats = sp.stats()
        assert stats["count"] == 0 and stats["refused"] == 1 and stats["bytes"] > 0
        assert up.stats()["rejected"] == 1 and not up.stats()["backing_off"]
        up.step(now + 1000)
        assert t.telemetry[-1]["spool"]["refused"] == 1  # reported
        server.refuse = set()
        server.retry = 7  # the operator asked: the next answer carries the request
        sp.append(b'{"v":1,"device":"%s","boot":1,"captured_at":9,"time_synced":false,'
                  b'"lines":[],"barcodes":[],"codes2d":[],"images":[],"cut":null,'
                  b'"end":null,"drawer":false}' % DEV.encode())
        now = _run(up, now + 1001, 10)
        assert poison in server.stored and sp.stats()["refused"] == 0
        assert up.stats()["retried"] == 7 and up.stats()["offered_again"] == 1
        batches = len(server.batches)
        _run(up, now, 10)  # the same request again: nothing more to do
        assert len(server.batches) == batches and up.stats()["offered_again"] == 1
    finally:
        fwtest.rmtree(d)


def test_refusals_arrive_with_the_ack_message_over_mqtt():
    sp, d = _spool(3)
    try:
        server = Server()
        server.refuse = {FIRST}
        t = MQTTLike(server)
        up = Uplink(sp, t, DEV, batch_count=10, ack_timeout_ms=1000, rand=_rand)
        now = _run(up, 0, 3)
        t.release()
        _run(up, now, 2)
        assert sp.stats()["count"] == 0 and sp.stats()["refused"] == 1
        assert up.stats()["in_flight"] == 0 and up.stats()["ack_timeouts"] == 0
    finally:
        fwtest.rmtree(d)


def test_an_answer_that_neither_acks_nor_refuses_is_retried_with_backoff():
    sp, d = _spool(1)
    try:
        class Silent(HTTPLike):
            def send(self, payload):
                self.server.handle(payload)
                return [], [], None  # a 2xx listing nothing

        server = Server()
        up = Uplink(sp, Silent(server), DEV, backoff_min_ms=400, rand=_rand)
        up.step(0)
        assert up.stats()["backing_off"] and up.step(1) == 399
        assert sp.stats()["count"] == 1 and sp.stats()["refused"] == 0
    finally:
        fwtest.rmtree(d)


def test_413_halves_the_batch_down_to_one_record_which_is_set_aside():
    sp, d = _spool(8)
    try:
        server = Server()
        big = FIRST + 5

        class Limited(HTTPLike):
            def send(self, payload):
                seqs = protocol_check.parse_batch(bytes(protocol.joined(payload)), DEV)
                if len(seqs["records"]) > 2 or big in [r["seq"] for r in seqs["records"]]:
                    server.batches.append("413")
                    raise TooLarge("HTTP 413")
                return server.handle(payload)

        up = Uplink(sp, Limited(server), DEV, batch_count=8, rand=_rand)
        _run(up, 0, 40)
        assert sorted(server.stored) == [s for s in _seqs(8) if s != big]
        assert sp.stats()["count"] == 0 and sp.stats()["refused"] == 1
        sizes = [len(b) for b in server.batches if b != "413"]
        assert max(sizes) <= 2 and up.stats()["too_large"] >= 3
        assert up.stats()["failures"] == 0  # a 413 is not a failure to back off from
    finally:
        fwtest.rmtree(d)


def test_garbage_from_the_transport_is_a_failure_not_a_crash():
    sp, d = _spool(2)
    try:
        class Broken(HTTPLike):
            def send(self, payload):
                raise TransportError("2xx without an ack body")

        up = Uplink(sp, Broken(Server()), DEV, rand=_rand)
        up.step(0)
        assert up.stats()["failures"] == 1 and "ack body" in up.stats()["last_error"]
        assert sp.stats()["count"] == 2
    finally:
        fwtest.rmtree(d)


def test_telemetry_reports_spool_depth_drops_and_last_ack():
    sp, d = _spool(4)
    try:
        t = HTTPLike(Server())
        up = Uplink(sp, t, DEV, boot=9, firmware="0.1.0", batch_count=2, telemetry_ms=1000,
                    printer_status=lambda: {"online": True}, rand=_rand)
        up.step(0)
        first = t.telemetry[0]
        assert protocol_check.parse_telemetry(json.dumps(first).encode(), DEV)
        assert first["spool"]["count"] == 4 and first["boot"] == 9
        assert first["firmware"] == "0.1.0" and first["printer"] == {"online": True}
        assert first["last_ack_ms"] is None
        _run(up, 1, 3)
        assert len(t.telemetry) == 1  # not due yet
        up.step(1500)
        last = t.telemetry[-1]
        assert last["spool"]["count"] == 0 and last["uplink"]["acked"] == 4
        assert last["last_ack_ms"] is not None
    finally:
        fwtest.rmtree(d)
