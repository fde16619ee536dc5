"""Uplink: moves spooled receipt records to the server; deletes one only after the server's ack.

    up = Uplink(spool, MQTTTransport(device, "broker", credential=secret), device, boot=7)
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
  spool records. A server can reject a record (bad data, old firmware): it stays in the spool,
  is left out of batches until the next boot (no hot loop on a poison record), and is counted.
- DNS (getaddrinfo) has no timeout in MicroPython. lwIP bounds it on the ESP32 (its own retry
  timeout, several seconds); we resolve the broker once and reuse the address until a connect
  fails, so an outage does not turn every retry into a DNS wait.

The umqtt.simple trap, and how it is avoided: umqtt's wait_msg() calls sock.setblocking(True)
after the first byte, and publish(qos=1) / subscribe() loop on wait_msg() until the PUBACK /
SUBACK arrives. On the ESP32 port setblocking(True) sets the socket timeout to infinite, so a
lost PUBACK blocks publish() forever (the unix port keeps SO_RCVTIMEO, so host tests do not show
it). Here umqtt never sees the real socket: it gets a _Link whose setblocking() does nothing and
whose every read and write waits with select.poll() against one deadline armed before each
umqtt call. The real socket stays non-blocking from the end of the TLS handshake on. umqtt's
check_msg() is not used; incoming packets are read only after poll() reported data, with the
deadline armed. The CONNECT is written here because umqtt.simple < 1.4 has no connect timeout
and opens its socket itself.

Bounds: one step() costs at most about 2 x timeout_ms (connect + TLS handshake, each socket read
bounded; then one publish or POST), plus DNS on the first connect after a failure.
"""
import errno
import struct

import protocol

try:
    from time import ticks_add, ticks_diff, ticks_ms
except ImportError:  # CPython
    import time as _time

    def ticks_ms():
        return _time.monotonic_ns() // 1000000

    def ticks_add(t, delta):
        return t + delta

    def ticks_diff(a, b):
        return a - b

try:
    import gc

    _mem_free = gc.mem_free
except AttributeError:  # CPython
    def _mem_free():
        return None

try:
    import select
    import socket
except ImportError:  # a port without networking: only injected transports work
    select = socket = None

from random import getrandbits

_CLOSED = (errno.ECONNRESET, errno.EPIPE if hasattr(errno, "EPIPE") else 32)
_WOULD_BLOCK = (errno.EAGAIN, errno.EINPROGRESS if hasattr(errno, "EINPROGRESS") else 115)
_MAX_PID = 65000  # umqtt.simple never wraps its packet id; past 65535 pack_into would raise
_ACK_READS_PER_POLL = 32  # bound on packets handled per poll(), so step() returns promptly


def tls_context(ca_pem):
    """A client TLS context that verifies the server against the CA certificate(s) in ca_pem.

    MicroPython's mbedTLS rejects PEM in load_verify_locations (it wants the NUL-terminated
    form), so each certificate is handed over as DER.
    """
    import ssl
    from binascii import a2b_base64

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    blocks = ca_pem.split(b"-----BEGIN CERTIFICATE-----")[1:]
    if not blocks:
        raise ValueError("no PEM certificate in the CA file")
    for block in blocks:
        body = block.split(b"-----END CERTIFICATE-----")[0]
        ctx.load_verify_locations(cadata=a2b_base64(body.replace(b"\r", b"").replace(b"\n", b"")))
    return ctx


class TransportError(OSError):
    """The server or broker answered, but not with an ack (refused, HTTP error, bad body)."""


class Uplink:
    """Delivers spool records in batches over one transport, one batch in flight at a time.

    spool: spool.Spool (or the same API). transport: MQTTTransport, HTTPTransport or anything
    with connect(), close(), send(payload) -> acked seqs or None (ack comes later), poll() ->
    acked seqs, send_telemetry(payload). device: device ID. boot: boot counter. firmware:
    version string. printer_status: callable -> JSON-able printer state, for telemetry.
    rand: callable(bits) -> int, for backoff jitter (tests make it deterministic).
    uptime: callable -> ms since boot for telemetry (ticks_ms wraps after ~12 days on the
    board); by default the `now` given to step().
    """

    def __init__(self, spool, transport, device, boot=0, firmware="", batch_count=20,
                 batch_bytes=16384, ack_timeout_ms=10000, backoff_min_ms=500,
                 backoff_max_ms=60000, idle_ms=200, poll_ms=20, telemetry_ms=60000,
                 printer_status=None, rand=getrandbits, max_skipped=32, uptime=None):
        if not 0 < backoff_min_ms <= backoff_max_ms:
            raise ValueError("backoff")
        self._spool = spool
        self._t = transport
        self._device = device
        self._boot = boot
        self._firmware = firmware
        self._count = min(batch_count, protocol.MAX_BATCH_RECORDS)
        self._bytes = min(batch_bytes, protocol.MAX_BATCH_BYTES // 2)
        self._ack_timeout = ack_timeout_ms
        self._backoff_min = backoff_min_ms
        self._backoff_max = backoff_max_ms
        self._idle = idle_ms
        self._poll = poll_ms
        self._telemetry_ms = telemetry_ms
        self._printer_status = printer_status
        self._rand = rand
        self._uptime = uptime
        self._max_skipped = max_skipped
        self._inflight = None        # seqs of the batch sent and not fully acked yet
        self._sent_at = 0
        self._retry_at = None        # backing off until this tick
        self._failures = 0           # consecutive failures (backoff exponent)
        self._skipped = []           # seqs the server rejected: not resent until reboot
        self._telemetry_at = None    # tick of the next telemetry; None = at the first step
        self._last_ack = None
        self._counts = {"batches": 0, "records_sent": 0, "acked": 0, "resent": 0,
                        "ack_timeouts": 0, "failures": 0, "rejected": 0, "telemetry": 0}
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
        skipped = self._skipped
        entries = self._spool.pending(self._count + len(skipped), self._bytes)
        if skipped:
            entries = [e for e in entries if e[0] not in skipped][:self._count]
        if not entries:
            return self._idle
        seqs = [seq for seq, _ in entries]
        payload = protocol.batch_bytes(self._device, entries)
        entries = None  # the record bytes are in the payload now; let gc have them
        self._inflight = seqs
        self._sent_at = now
        self._counts["batches"] += 1
        self._counts["records_sent"] += len(seqs)
        acked = self._t.send(payload)
        if acked is None:  # MQTT: the ack comes as a message, poll() picks it up
            return self._poll
        sent = len(seqs)
        self._take(acked, now)
        if self._inflight is not None:  # answered, but these were not acked: the server refused
            self._refused(self._inflight, sent)
        return 0

    def _take(self, acked, now):
        """Deletes acked seqs from the spool (any seq: a late ack of an earlier send counts)."""
        if not acked:
            return
        self._spool.ack(acked)
        self._counts["acked"] += len(acked)
        self._last_ack = now
        self._failures = 0
        if self._inflight is not None:
            done = set(acked)
            rest = [s for s in self._inflight if s not in done]
            self._inflight = rest or None

    def _refused(self, seqs, sent):
        """The server answered a batch without acking seqs: keep them, stop resending them."""
        self._inflight = None
        self._counts["rejected"] += len(seqs)
        room = self._max_skipped - len(self._skipped)
        self._skipped += seqs[:max(room, 0)]
        if len(seqs) == sent:  # nothing in the batch was accepted: do not hammer the server
            self._fail(self._sent_at, TransportError("every record refused"), close=False)

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
            self._device, self._boot, self._uptime() if self._uptime else now, _mem_free(), self._spool.stats(),
            None if self._last_ack is None else ticks_diff(now, self._last_ack), status,
            self._firmware, self.stats())

    def stats(self):
        """Delivery counters, the backoff state and the last error."""
        out = dict(self._counts)
        out["in_flight"] = len(self._inflight) if self._inflight else 0
        out["backing_off"] = self._retry_at is not None
        out["skipped"] = len(self._skipped)
        out["last_error"] = self._last_error
        return out


# -- MQTT


class _Link:
    """A non-blocking socket as umqtt.simple uses it (read, write, setblocking), every wait
    bounded by a deadline armed with arm() before each umqtt call. See the module docstring."""

    def __init__(self, sock, timeout_ms):
        self._s = sock
        self._timeout = timeout_ms
        self._deadline = ticks_add(ticks_ms(), timeout_ms)
        self._pushback = b""
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)
        # MicroPython sockets (plain and TLS) read/write; CPython's have recv/send.
        self._read = getattr(sock, "read", None) or sock.recv
        self._write = getattr(sock, "write", None) or sock.send

    def arm(self):
        """Start the time budget (timeout_ms) of the next umqtt call."""
        self._deadline = ticks_add(ticks_ms(), self._timeout)

    def setblocking(self, flag):
        """Ignored on purpose: umqtt's setblocking(True) would make the ESP32 wait forever."""

    def _wait(self, event):
        left = ticks_diff(self._deadline, ticks_ms())
        if left <= 0:
            raise OSError(errno.ETIMEDOUT)
        self._poll.modify(self._s, event)
        for _, ev in self._poll.poll(left):
            if ev & (select.POLLERR | select.POLLHUP) and not ev & select.POLLIN:
                raise OSError(errno.ECONNRESET)

    def _try_read(self, n):
        try:
            return self._read(n)  # None (MicroPython) or EAGAIN (CPython) when nothing is there
        except OSError as e:
            if e.args and e.args[0] in _WOULD_BLOCK:
                return None
            raise

    def ready(self, wait_ms):
        """True if a packet has started arriving within wait_ms (one byte is held back)."""
        if self._pushback:
            return True
        data = self._try_read(1)
        if data is None and wait_ms > 0:
            for _ in self._poll.poll(wait_ms):
                data = self._try_read(1)
        if data == b"":
            raise OSError(errno.ECONNRESET)
        if data:
            self._pushback = data
            return True
        return False

    def read(self, n):
        """Exactly n bytes; b"" on a clean close before the first byte; OSError on timeout."""
        got = self._pushback
        self._pushback = b""
        while len(got) < n:
            data = self._try_read(n - len(got))
            if data is None:
                self._wait(select.POLLIN)
                continue
            if not data:
                if got:
                    raise OSError(errno.ECONNRESET)
                return b""
            got += data
        return got

    def write(self, buf, n=None):
        """Writes buf[:n] (all of buf by default) before the deadline."""
        view = memoryview(buf)[:len(buf) if n is None else n]
        done = 0
        while done < len(view):
            try:
                sent = self._write(view[done:])
            except OSError as e:
                if not (e.args and e.args[0] in _WOULD_BLOCK):
                    raise
                sent = None
            if sent is None or sent == 0:
                self._wait(select.POLLOUT)
                continue
            done += sent
        return done

    def close(self):
        self._s.close()


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _mqtt_str(s):
    if isinstance(s, str):
        s = s.encode()
    return struct.pack("!H", len(s)) + s


class MQTTTransport:
    """QoS 1 batches to tilltap/<device>/receipts; acks read from tilltap/<device>/ack.

    The session is persistent (clean_session=False, client ID = device ID), so acks the server
    publishes while the device is offline wait at the broker. credential: the device's password
    (user name = device ID). tls: an SSLContext (with the CA loaded, CERT_REQUIRED) or None.
    timeout_ms bounds each connect, TLS handshake read, publish and subscribe.
    """

    def __init__(self, device, host, port=0, credential=None, tls=None, timeout_ms=5000,
                 keepalive_s=60, client_cls=None):
        if client_cls is None:
            from umqtt.simple import MQTTClient as client_cls
        self._device = device
        self._host = host
        self._port = port or (8883 if tls else 1883)
        self._credential = credential
        self._tls = tls
        self._timeout = timeout_ms
        self._keepalive = keepalive_s
        self._client_cls = client_cls
        self._addr = None
        self._client = None
        self._link = None
        self._acks = []
        self._last_tx = 0

    def connect(self):
        """Opens the TCP (+TLS) connection, logs in and subscribes to the ack topic."""
        if self._addr is None:
            self._addr = socket.getaddrinfo(self._host, self._port, 0, socket.SOCK_STREAM)[0][-1]
        sock = socket.socket()
        try:
            sock.settimeout(self._timeout / 1000)  # bounds connect and each handshake read
            sock.connect(self._addr)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._host)
            sock.setblocking(False)
            link = _Link(sock, self._timeout)
            self._login(link)
        except Exception:
            sock.close()
            self._addr = None  # the address may be stale: resolve again next time
            raise
        client = self._client_cls(self._device, self._host, self._port,
                                  self._device, self._credential, self._keepalive)
        client.sock = link
        client.set_callback(self._on_message)
        self._client, self._link = client, link
        link.arm()
        client.subscribe(protocol.ack_topic(self._device), qos=1)
        self._last_tx = ticks_ms()

    def _login(self, link):
        """CONNECT (MQTT 3.1.1, persistent session) and its CONNACK, within one deadline."""
        flags = 0x80 | 0x40 if self._credential is not None else 0  # user name and password
        body = b"\x00\x04MQTT\x04" + bytes([flags]) + struct.pack("!H", self._keepalive)
        body += _mqtt_str(self._device)
        if self._credential is not None:
            body += _mqtt_str(self._device) + _mqtt_str(self._credential)
        link.arm()
        link.write(b"\x10" + _varint(len(body)) + body)
        resp = link.read(4)
        if len(resp) != 4 or resp[0] != 0x20 or resp[1] != 2:
            raise TransportError("no CONNACK")
        if resp[3]:
            raise TransportError("connection refused, code %d" % resp[3])

    def connected(self):
        return self._client is not None

    def _on_message(self, topic, msg):
        ack = protocol.parse_ack(msg)
        if ack is not None:
            self._acks += ack[0]

    def send(self, payload):
        """QoS 1 publish of a batch; returns None: the app-level ack comes through poll()."""
        self._publish(protocol.receipts_topic(self._device), payload)
        return None

    def send_telemetry(self, payload):
        self._publish(protocol.telemetry_topic(self._device), payload)

    def _publish(self, topic, payload):
        if self._client is None:
            self.connect()
        if self._client.pid > _MAX_PID:
            self._client.pid = 0
        self._link.arm()
        self._client.publish(topic, payload, qos=1)  # waits for the PUBACK, bounded by _Link
        self._last_tx = ticks_ms()

    def poll(self, wait_ms=0):
        """Acked seqs received since the last call; reads only what has arrived (or arrives
        within wait_ms), each packet within the deadline. Pings when idle for keepalive/2."""
        if self._client is None:
            return []
        link = self._link
        for _ in range(_ACK_READS_PER_POLL):
            if not link.ready(wait_ms):
                break
            wait_ms = 0
            link.arm()
            op = self._client.wait_msg()
            if op is not None:  # a packet umqtt does not consume: a late PUBACK, a SUBACK...
                link.read(self._packet_length())
        if self._keepalive and ticks_diff(ticks_ms(), self._last_tx) > self._keepalive * 500:
            link.arm()
            self._client.ping()
            self._last_tx = ticks_ms()
        acks, self._acks = self._acks, []
        return acks

    def _packet_length(self):
        n = shift = 0
        while True:
            b = self._link.read(1)[0]
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7

    def close(self):
        """Drops the connection without waiting (a DISCONNECT is not worth a blocked write)."""
        link, self._client, self._link = self._link, None, None
        if link is not None:
            link.close()


# -- HTTP


class HTTPTransport:
    """POSTs batches to <base_url>/api/v1/ingest; a 2xx body {"acked": [...]} is the ack.

    Uses `requests` (or `urequests` on old firmware), one connection per request (requests
    0.10 speaks HTTP/1.0 and closes). timeout_ms bounds the connect and each socket read.
    Limitation: micropython-lib requests does not verify TLS certificates (it sets CERT_NONE);
    use MQTT over TLS (MQTTTransport with an SSLContext) where the server must be authenticated.
    """

    def __init__(self, device, base_url, credential, timeout_ms=5000, requests_mod=None):
        if requests_mod is None:
            try:
                import requests as requests_mod
            except ImportError:
                import urequests as requests_mod
        self._requests = requests_mod
        self._base = base_url.rstrip("/")
        self._auth = (device, credential)
        self._timeout = timeout_ms / 1000

    def connect(self):
        """Nothing to do: each request opens its own connection."""

    def close(self):
        """Nothing to do: each request closes its own connection."""

    def connected(self):
        return True

    def _post(self, path, payload):
        r = self._requests.post(self._base + path, data=payload, auth=self._auth,
                                headers={"Content-Type": "application/json"},
                                timeout=self._timeout)
        try:
            status = r.status_code
            body = r.content
        finally:
            r.close()
        if not 200 <= status <= 299:
            raise TransportError("HTTP %d" % status)
        return body

    def send(self, payload):
        """POSTs the batch; returns the acked seqs of the 2xx answer (raises otherwise)."""
        ack = protocol.parse_ack(self._post(protocol.HTTP_INGEST_PATH, payload))
        if ack is None:
            raise TransportError("2xx without an ack body")
        return ack[0]

    def send_telemetry(self, payload):
        self._post(protocol.HTTP_TELEMETRY_PATH, payload)

    def poll(self, wait_ms=0):
        return []
