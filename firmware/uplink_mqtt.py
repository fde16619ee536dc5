"""MQTT transport of the uplink (uplink.py): umqtt.simple over a socket whose every wait is
bounded.

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
"""
import errno
import struct

from . import protocol
from .compat import const, ticks_add, ticks_diff, ticks_ms
from .uplink import TransportError

try:
    import select
    import socket
except ImportError:  # a port without networking: only injected transports work
    select = socket = None

_CLOSED = (errno.ECONNRESET, errno.EPIPE if hasattr(errno, "EPIPE") else 32)
_WOULD_BLOCK = (errno.EAGAIN, errno.EINPROGRESS if hasattr(errno, "EINPROGRESS") else 115)
_MAX_PID = 65000  # umqtt.simple never wraps its packet id; past 65535 pack_into would raise
_ACK_READS_PER_POLL = 32  # bound on packets handled per poll(), so step() returns promptly
_PIECE = const(256)  # bytes of a large record read from flash per socket write


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
        self._piece = bytearray(_PIECE)   # a record read from flash while it is sent

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
        """Writes buf[:n] (all of buf by default), or a whole _Payload, before the deadline."""
        if isinstance(buf, _Payload):
            for part in buf.parts:
                if hasattr(part, "pieces"):   # a record larger than the batch buffer
                    for piece in part.pieces(self._piece):
                        self.write(piece)
                else:
                    self.write(part)
            return buf.size
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


class _Payload:
    """A batch in parts for umqtt.simple's publish(), which takes len() of its message and
    hands it to the socket's write(), that is _Link.write: the parts go out one by one, never
    joined (the heap may have no block of the batch's size)."""

    def __init__(self, parts):
        self.parts = parts
        self.size = 0
        for part in parts:
            self.size += len(part)

    def __len__(self):
        return self.size


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
        self._refused = []
        self._retry = None
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
            self._refused += ack[1]
            if ack[2] is not None:
                self._retry = ack[2]

    def send(self, parts):
        """QoS 1 publish of a batch (protocol.batch_parts); returns None: the app-level ack
        comes through poll()."""
        self._publish(protocol.receipts_topic(self._device), _Payload(parts))

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
        """The answer (protocol.parse_answer) of the ack messages received since the last call,
        None if none came; reads only what has arrived (or arrives within wait_ms), each packet
        within the deadline. Pings when idle for keepalive/2."""
        if self._client is None:
            return None
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
        if not (self._acks or self._refused or self._retry is not None):
            return None
        answer = (self._acks, self._refused, self._retry)
        self._acks, self._refused, self._retry = [], [], None
        return answer

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
