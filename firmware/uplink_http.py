"""HTTP transport of the uplink (uplink.py): one POST per batch, the 2xx body is the ack (an
error body may list refused records); the answer to telemetry may carry an operator's
request."""
from . import protocol
from .uplink import TooLarge, TransportError


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
        self._retry = None  # retry_refused request of the last telemetry answer

    def connect(self):
        """Nothing to do: each request opens its own connection."""

    def close(self):
        """Nothing to do: each request closes its own connection."""

    def connected(self):
        return True

    def _post(self, path, payload):
        """(status, body) of a POST."""
        r = self._requests.post(self._base + path, data=payload, auth=self._auth,
                                headers={"Content-Type": "application/json"},
                                timeout=self._timeout)
        try:
            return r.status_code, r.content
        finally:
            r.close()

    def send(self, payload):
        """POSTs the batch; returns the answer (protocol.parse_answer) of a 2xx, or of an error
        that names refused records (they are refused for good); raises otherwise (TooLarge on
        413)."""
        status, body = self._post(protocol.HTTP_INGEST_PATH, protocol.joined(payload))
        if 200 <= status <= 299:
            answer = protocol.parse_ack(body)
            if answer is None:
                raise TransportError("2xx without an ack body")
            return answer
        if status == 413:
            raise TooLarge("HTTP 413")
        answer = protocol.parse_answer(body)
        if answer is None or not answer[1]:
            raise TransportError("HTTP %d" % status)
        return answer

    def send_telemetry(self, payload):
        """POSTs telemetry; an operator's request in the answer comes out of the next poll()."""
        status, body = self._post(protocol.HTTP_TELEMETRY_PATH, payload)
        if not 200 <= status <= 299:
            raise TransportError("HTTP %d" % status)
        answer = protocol.parse_answer(body)
        if answer is not None and answer[2] is not None:
            self._retry = answer[2]

    def poll(self, wait_ms=0):
        """The retry request of the last telemetry answer, once; None without one."""
        retry, self._retry = self._retry, None
        return None if retry is None else ([], [], retry)
