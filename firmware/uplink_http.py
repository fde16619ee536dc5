"""HTTP transport of the uplink (uplink.py): one POST per batch, the 2xx body is the ack."""
from . import protocol
from .uplink import TransportError


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
        ack = protocol.parse_ack(self._post(protocol.HTTP_INGEST_PATH, protocol.joined(payload)))
        if ack is None:
            raise TransportError("2xx without an ack body")
        return ack[0]

    def send_telemetry(self, payload):
        self._post(protocol.HTTP_TELEMETRY_PATH, payload)

    def poll(self, wait_ms=0):
        return []
