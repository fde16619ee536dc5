"""The app factory: one ASGI app for devices (ingest), operators (API) and the dashboard.

    app = create_app(ingest, status, settings)     # `tilltap serve` runs it with uvicorn

Every route module has an APIRouter; shared dependencies (engine, operator login) are in
api/deps.py. The app's state holds what they need: the ingest writer and its engine, a
callable adding to /healthz (the MQTT consumer's connection state), the security settings and
the failed-login back-off. Around every route (api/security.py): security headers on every
response, a same-origin check on state-changing requests, a body limit per route (deps.MAX_BODY
unless the route says otherwise), and, with trusted proxies set, their forwarded scheme and
client address. No /docs page: it loads scripts from a CDN, which the CSP forbids; the schema
is at /openapi.json.
"""
from fastapi import FastAPI
from sqlalchemy.exc import DataError
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from tilltap.accounts.throttle import LoginThrottle
from tilltap.api import customers, dashboard, ingest, receipts, reports, session, templates
from tilltap.api.deps import MAX_BODY, RefuseNul, refused_value
from tilltap.api.security import SameOriginWrites, SecurityHeaders, SecuritySettings
from tilltap_fw import FIRMWARE_VERSION

ROUTERS = (ingest, session, reports, customers, receipts, templates, dashboard)


class _TillTapApp(FastAPI):
    def build_middleware_stack(self):
        # Outside FastAPI's own layers, so that its 500s and body-limit 413s get the headers
        # too, and every layer sees the client's scheme and address.
        app = SecurityHeaders(super().build_middleware_stack())
        proxies = self.state.settings.trusted_proxies
        return ProxyHeadersMiddleware(app, trusted_hosts=list(proxies)) if proxies else app


def create_app(ingest_writer, status=None, settings=None):
    """The ASGI app over an ingest.writer.Ingest (which owns the engine).

    status: callable -> dict merged into /healthz (e.g. the MQTT consumer's connection state).
    settings: security.SecuritySettings (default: no monitoring token, no trusted proxy).
    """
    app = _TillTapApp(title="TillTap", version=FIRMWARE_VERSION, max_body_size=MAX_BODY,
                      docs_url=None, redoc_url=None)
    app.state.ingest = ingest_writer
    app.state.engine = ingest_writer.engine
    app.state.status = status
    app.state.settings = settings or SecuritySettings()
    app.state.login_throttle = LoginThrottle()
    app.add_middleware(SameOriginWrites)
    for module in ROUTERS:
        app.include_router(module.router)
    # no parameter value answers 500: NUL in the URL is refused before any route, what the
    # database refuses of a request is its client's error
    app.add_middleware(RefuseNul)
    app.add_exception_handler(DataError, refused_value)
    app.add_exception_handler(UnicodeEncodeError, refused_value)
    return app
