"""Database targets for server tests: a fresh SQLite file, or a private schema in a real
PostgreSQL ($TILLTAP_PG_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/test)."""
import os
import uuid

import pytest
from sqlalchemy import create_engine, text

PG_URL = os.environ.get("TILLTAP_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TARGETS = ["sqlite", "postgresql"]


def pg_available():
    try:
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


class Target:
    """url + schema for one test: pass both to database.make_engine / `tilltap serve`."""

    def __init__(self, kind, tmp_path):
        self.kind = kind
        if kind == "sqlite":
            self.url = "sqlite:///%s" % (tmp_path / "tilltap.db")
            self.schema = None
        else:
            if not pg_available():
                pytest.skip("PostgreSQL not reachable at %s (set TILLTAP_PG_URL)" % PG_URL)
            self.url = PG_URL
            # Unique per test run: parallel runs against one server never collide.
            self.schema = "tt_%s" % uuid.uuid4().hex[:12]

    def cleanup(self):
        if self.schema:
            engine = create_engine(self.url)
            with engine.begin() as conn:
                conn.execute(text('DROP SCHEMA IF EXISTS "%s" CASCADE' % self.schema))
            engine.dispose()


@pytest.fixture(params=TARGETS)
def db_target(request, tmp_path):
    target = Target(request.param, tmp_path)
    yield target
    target.cleanup()
