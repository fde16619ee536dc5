"""What protects the browser side of the server: security headers on every response, a
same-origin check on every state-changing request (CSRF), and the operator's settings for
them (`tilltap serve --monitor-token-file`, `--trusted-proxy`).

    app = create_app(ingest, settings=SecuritySettings(monitor_token="...",
                                                       trusted_proxies=("10.0.0.5",)))

The dashboard is one origin of static files and fetch() calls, so the policy can be strict:
its scripts and styles come from its own files only, nothing frames it, nothing sniffs types.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from tilltap_fw import protocol

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'")
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),          # frame-ancestors for browsers without CSP 2
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
# Only sent over HTTPS (directly or through a trusted proxy): over plain HTTP it is ignored,
# and a server reached by IP on a shop's LAN must stay reachable without TLS.
HSTS = (b"strict-transport-security", b"max-age=31536000")

SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
# Devices authenticate with their credential in every request, never with a cookie, so a
# foreign page cannot ride on a browser's login there: the check does not apply.
DEVICE_PATHS = frozenset((protocol.HTTP_INGEST_PATH, protocol.HTTP_TELEMETRY_PATH))


@dataclass(frozen=True)
class SecuritySettings:
    """What an operator sets (README: Server security settings).

    monitor_token: a client sending `Authorization: Bearer <token>` sees /healthz in full
    (ingest counters, MQTT state); None: only logged-in operators do.
    trusted_proxies: addresses (or networks) of reverse proxies whose X-Forwarded-Proto and
    X-Forwarded-For are believed: the scheme decides the cookie's Secure flag, the address the
    login back-off. Empty: the connection's own scheme and address.
    """

    monitor_token: str | None = None
    trusted_proxies: tuple[str, ...] = ()


def cross_site_reason(method, path, headers):
    """Why a request must be refused as cross-site (CSRF), or None to let it through.

    Browsers mark their requests with Sec-Fetch-Site; only "same-origin" (our own pages) and
    "none" (typed by the user) may change state. `SameSite=Strict` alone does not separate
    ports of one host, hence this check. Browsers too old for Sec-Fetch-Site still send Origin
    on cross-origin writes: it must name this host. A request with neither comes from no
    browser (a script, curl) and carries its own credentials.
    headers: a Mapping with lower-case names.
    """
    if method in SAFE_METHODS or path in DEVICE_PATHS:
        return None
    site = headers.get("sec-fetch-site")
    if site is not None:
        if site in ("same-origin", "none"):
            return None
        return "cross-site request refused (Sec-Fetch-Site: %s)" % site
    origin = headers.get("origin")
    if origin is None:
        return None
    if origin == "null" or urlsplit(origin).netloc != headers.get("host"):
        return "cross-origin request refused (Origin: %s)" % origin
    return None


def _headers(scope):
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


class SameOriginWrites:
    """ASGI middleware: 403 for a state-changing request a foreign page made (cross_site_reason),
    before the route reads its body or its login."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            reason = cross_site_reason(scope["method"], scope["path"], _headers(scope))
            if reason is not None:
                body = json.dumps({"detail": reason}).encode()
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", b"%d" % len(body))]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """ASGI middleware adding SECURITY_HEADERS (and HSTS over HTTPS) to every response, errors
    and the body-limit's 413 included, unless the response set its own."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = SECURITY_HEADERS + ((HSTS,) if scope.get("scheme") == "https" else ())

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)
