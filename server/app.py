"""The app factory: one ASGI app for devices (ingest), operators (API) and the dashboard.

    app = create_app(ingest, status)     # `tilltap serve` runs it with uvicorn

Every route module has an APIRouter; shared dependencies (engine, operator login) are in
api/deps.py. The app's state holds what they need: the ingest writer and its engine, and a
callable adding to /healthz (the MQTT consumer's connection state).
"""
from fastapi import FastAPI
from sqlalchemy.exc import DataError

from tilltap.api import customers, dashboard, ingest, receipts, reports, session, templates
from tilltap.api.deps import RefuseNul, refused_value
from tilltap_fw import FIRMWARE_VERSION

ROUTERS = (ingest, session, reports, customers, receipts, templates, dashboard)


def create_app(ingest_writer, status=None):
    """The ASGI app over an ingest.writer.Ingest (which owns the engine).

    status: callable -> dict merged into /healthz (e.g. the MQTT consumer's connection state).
    """
    app = FastAPI(title="TillTap", version=FIRMWARE_VERSION)
    app.state.ingest = ingest_writer
    app.state.engine = ingest_writer.engine
    app.state.status = status
    for module in ROUTERS:
        app.include_router(module.router)
    # no parameter value answers 500: NUL in the URL is refused before any route, what the
    # database refuses of a request is its client's error
    app.add_middleware(RefuseNul)
    app.add_exception_handler(DataError, refused_value)
    app.add_exception_handler(UnicodeEncodeError, refused_value)
    return app
