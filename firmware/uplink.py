"""Uplink: moves spooled receipt records to the server; deletes one only after the server's ack.

    up = Uplink(spool, MQTTTransport(device, "broker", credential=secret), device, boot=7)
    # MQTTTransport from uplink_mqtt.py, or HTTPTransport from uplink_http.py
    while True:
        wait_ms = up.step(time.ticks_ms())   # never blocks longer than the transport's timeout
        ...                                  # forwarding work; call step() again within wait_ms

Failure assumptions (what the network does to a tap on shop Wi-Fi):
- Links drop for seconds to hours, often silently: a TCP peer can vanish without a FIN, a
  broker or server can accept a connection and never answer, a message can be cut half-way.
  The only reliable detector is a timeout on an expected answer, so every wait has one.
- The server can die after committing a batch and before acking it, and a broker can lose or
  duplicate messages across restarts. Delivery is therefore at-least-once: a batch is resent
  until its app-level ack arrives, and the server stores (device, seq) once.
- A broker PUBACK (or a TCP ACK) means nothing about storage: only the server's ack message
  ({"acked": [...]} on tilltap/<device>/ack) or an HTTP 2xx whose body lists the seqs deletes
  spool records. Only a record the server names in "rejected" is refused for good: the spool
  sets it aside (kept on flash, not resent: no hot loop on a poison record), telemetry counts
  it, and an operator's retry_refused request (`tilltap devices retry-refused ID`) offers it
  again. Whole-batch failures (HTTP 4xx/5xx, no answer) are retried with backoff; HTTP 413
  halves the batch, down to one record, which is then set aside.
- DNS (getaddrinfo) has no timeout in MicroPython. lwIP bounds it on the ESP32 (its own retry
  timeout, several seconds); we resolve the broker once and reuse the address until a connect
  fails, so an outage does not turn every retry into a DNS wait.

The transports live in uplink_mqtt.py and uplink_http.py; the board loads only the one its
configuration names.

Bounds: one step() costs at most about 2 x timeout_ms (connect + TLS handshake, each socket read
bounded; then one publish or POST), plus DNS on the first connect after a failure.
"""
import errno
from random import getrandbits

from . import protocol
from .compat import ticks_add, ticks_diff

try:
    import gc

    _mem_free = gc.mem_free
except AttributeError:  # CPython
    def _mem_free():
        return None


class TransportError(OSError):
    """The server or broker answered, but not with an ack (refused, HTTP error, bad body)."""


class TooLarge(TransportError):
    """The server refused the batch for its size (HTTP 413): send fewer records at once."""


class Uplink:
    """Delivers spool records in batches over one transport, one batch in flight at a time.

    spool: spool.Spool (or the same API). transport: MQTTTransport, HTTPTransport or anything
    with connect(), close(), send(batch parts) -> answer or None (MQTT: it comes later),
    poll() -> answer or None, send_telemetry(payload); an answer is protocol.parse_answer()'s
    (acked seqs, refused seqs, retry_refused request or None). device: device ID. boot: boot
    counter. firmware: version string. printer_status: callable -> JSON-able printer state,
    for telemetry. batch_bytes: bytes per batch at most (upload.batch_bytes), or the bytearray
    of protocol.batch_size(that) to read batches into.
    rand: callable(bits) -> int, for backoff jitter (tests make it deterministic).
    uptime: callable -> ms since boot for telemetry (ticks_ms wraps after ~12 days on the
    board); by default the `now` given to step().
    """

    def __init__(  # noqa: PLR0913, PLR0917 -- one keyword per setting, each with a default
            self, spool, transport, device, boot=0, firmware="", batch_count=20,
            batch_bytes=16384, ack_timeout_ms=10000, backoff_min_ms=500, backoff_max_ms=60000,
            idle_ms=200, poll_ms=20, telemetry_ms=60000, printer_status=None, rand=getrandbits,
            uptime=None):
        if not 0 < backoff_min_ms <= backoff_max_ms:
            raise ValueError("backoff")
        self._spool = spool
        self._t = transport
        self._device = device
        self._boot = boot
        self._firmware = firmware
        self._count = min(batch_count, protocol.MAX_BATCH_RECORDS)
        # the batch is read into this buffer, allocated once (by the runner at boot, before
        # the heap fragments): the uplink thread then needs little heap while capture works
        # (a batch's first record may still be larger)
        if isinstance(batch_bytes, int):
            batch_bytes = bytearray(protocol.batch_size(batch_bytes))
        self._batch_buf = batch_bytes
        self._bytes = len(batch_bytes)
        self._ack_timeout = ack_timeout_ms
        self._backoff_min = backoff_min_ms
        self._backoff_max = backoff_max_ms
        self._idle = idle_ms
        self._poll = poll_ms
        self._telemetry_ms = telemetry_ms
        self._printer_status = printer_status
        self._rand = rand
        self._uptime = uptime
        self._inflight = None        # seqs of the batch sent and not fully acked yet
        self._sent_at = 0
        self._retry_at = None        # backing off until this tick
        self._failures = 0           # consecutive failures (backoff exponent)
        self._split = None           # records per batch after a 413, until _split_end is done
        self._split_end = None
        self._retried = None         # the last retry_refused request handled
        self._telemetry_at = None    # tick of the next telemetry; None = at the first step
        self._last_ack = None
        self._counts = {"batches": 0, "records_sent": 0, "acked": 0, "resent": 0,
                        "ack_timeouts": 0, "failures": 0, "rejected": 0, "too_large": 0,
                        "offered_again": 0, "telemetry": 0}
        self._last_error = None

    def step(self, now):
        """Do the next piece of delivery work; returns ms until calling again is useful.

        now: ticks_ms(). Never raises on network trouble: failures are counted, the transport
        is closed and the next attempt waits an exponential backoff with jitter.
        """
        if self._retry_at is not None:
            wait = ticks_diff(self._retry_at, now)
            if wait > 0:
                return wait
            self._retry_at = None
        try:
            if self._inflight is not None:
                self._take(self._t.poll(), now)
                if self._inflight is None:
                    return 0
                if ticks_diff(now, self._sent_at) < self._ack_timeout:
                    return self._poll
                self._counts["ack_timeouts"] += 1
                raise OSError(errno.ETIMEDOUT)
            if self._telemetry_at is None or ticks_diff(now, self._telemetry_at) >= 0:
                self._telemetry_at = ticks_add(now, self._telemetry_ms)
                self._t.send_telemetry(self.telemetry(now))
                self._counts["telemetry"] += 1
            return self._send_batch(now)
        except Exception as e:  # any transport trouble (OSError, umqtt's asserts, bad bodies)
            return self._fail(now, e)

    def _send_batch(self, now):
        self._take(self._t.poll(), now)  # a retry request may come while nothing is in flight
        entries = self._spool.pending(self._split or self._count, self._bytes,
                                      self._batch_buf)
        if not entries:
            return self._idle
        seqs = [seq for seq, _ in entries]
        payload = protocol.batch_parts(self._device, entries)
        self._inflight = seqs
        self._sent_at = now
        self._counts["batches"] += 1
        self._counts["records_sent"] += len(seqs)
        try:
            answer = self._t.send(payload)
        except TooLarge:
            return self._too_large(seqs)
        if answer is None:  # MQTT: the ack comes as a message, poll() picks it up
            return self._poll
        self._take(answer, now)
        if self._inflight is not None:  # answered, but neither acked nor refused: retry later
            return self._fail(now, TransportError("%d records not acked" % len(self._inflight)),
                              close=False)
        return 0

    def _too_large(self, seqs):
        """HTTP 413: halve the batch (until the last seq of this one is done); a single record
        too large for the server is refused for good."""
        self._inflight = None
        self._counts["too_large"] += 1
        if len(seqs) == 1:
            self._counts["rejected"] += self._spool.set_aside(seqs)
            if seqs[0] == self._split_end:
                self._split = self._split_end = None
        else:
            self._split = len(seqs) // 2
            self._split_end = seqs[-1] if self._split_end is None else self._split_end
        return 0

    def _take(self, answer, now):
        """Applies a server answer: deletes acked seqs from the spool (any seq: a late ack of an
        earlier send counts), sets refused ones aside, and runs a new retry_refused request."""
        if not answer:
            return
        acked, refused, retry = answer
        if acked:
            self._spool.ack(acked)
            self._counts["acked"] += len(acked)
            self._last_ack = now
            self._failures = 0
        if refused:
            self._counts["rejected"] += self._spool.set_aside(refused)
        done = acked + refused
        if self._inflight is not None and done:
            rest = [s for s in self._inflight if s not in done]
            self._inflight = rest or None
        if self._split_end is not None and self._split_end in done:
            self._split = self._split_end = None
        if retry is not None and retry != self._retried:
            self._retried = retry
            self._counts["offered_again"] += self._spool.retry_refused()

    def _fail(self, now, error, close=True):
        if self._inflight is not None:
            self._counts["resent"] += len(self._inflight)
        self._inflight = None
        self._counts["failures"] += 1
        self._last_error = repr(error)
        if close:
            try:
                self._t.close()
            except Exception:  # closing a dead link can fail too; it is gone either way
                pass
        self._failures += 1
        delay = self._backoff_min << min(self._failures - 1, 16)
        delay = min(delay, self._backoff_max)
        # "Equal jitter": half fixed, half random, so a fleet does not retry in step after an
        # outage of the server, and no device retries sooner than half its backoff.
        delay = delay // 2 + (self._rand(16) * (delay // 2 + 1) >> 16)
        self._retry_at = ticks_add(now, delay)
        return delay

    def telemetry(self, now):
        """The telemetry payload (bytes): uptime, memory, spool depth and drops, last ack..."""
        status = self._printer_status() if self._printer_status else None
        return protocol.telemetry(
            self._device, self._boot, self._uptime() if self._uptime else now, _mem_free(),
            self._spool.stats(),
            None if self._last_ack is None else ticks_diff(now, self._last_ack), status,
            self._firmware, self.stats())

    def failing(self):
        """True while deliveries fail (backing off before the next try)."""
        return self._retry_at is not None

    def stats(self):
        """Delivery counters, the backoff state and the last error."""
        out = dict(self._counts)
        out["in_flight"] = len(self._inflight) if self._inflight else 0
        out["backing_off"] = self._retry_at is not None
        out["retried"] = self._retried
        out["last_error"] = self._last_error
        return out
