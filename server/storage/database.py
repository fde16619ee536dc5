"""The database: the engine (SQLite with WAL by default, PostgreSQL by URL); the tables are in
schema.py.

Failure assumptions:
- The process can be killed at any instant; what a COMMIT returned is on disk. SQLite runs in
  WAL mode with synchronous=FULL (a committed transaction survives power loss, not only a
  process crash), since an ack sent after commit lets the device delete its only copy.
- Several server processes can write at once (PostgreSQL); uniqueness of (device_id, seq) is
  the database's job (primary key + INSERT .. ON CONFLICT DO NOTHING), not the application's.
- Tests and several deployments can share one PostgreSQL: every table lives in a schema chosen
  at engine creation (schema_translate_map), "public" by default.
"""
import datetime as dt

from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.dialects import postgresql, sqlite

from tilltap.storage.schema import metadata

DEFAULT_URL = "sqlite:///tilltap.db"

def insert(engine, table):
    """INSERT for the engine's dialect, which knows ON CONFLICT (do nothing / do update)."""
    return (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(table)


def unavailable(error):
    """True when error means the database failed (down, locked, connection lost) rather than
    refused the data: nothing a retry of smaller parts would get past."""
    return isinstance(error, (exc.OperationalError, exc.InterfaceError, exc.DisconnectionError))


def utcnow():
    return dt.datetime.now(dt.timezone.utc)


def make_engine(url=None, schema=None, create=True):
    """Engine for url (default sqlite:///tilltap.db); tables created unless create=False.

    schema: PostgreSQL schema holding the tables (created if missing); ignored for SQLite.
    """
    url = url or DEFAULT_URL
    sqlite = url.startswith("sqlite")
    kwargs = {"connect_args": {"timeout": 30}} if sqlite else {"pool_pre_ping": True}
    engine = create_engine(url, **kwargs)
    if sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    elif schema:
        with engine.begin() as conn:
            conn.execute(text('CREATE SCHEMA IF NOT EXISTS "%s"' % schema))
        engine = engine.execution_options(schema_translate_map={None: schema})
    if create:
        metadata.create_all(engine)
    return engine


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def drop_schema(engine, schema):
    """Removes a PostgreSQL schema and everything in it (test clean-up)."""
    with engine.begin() as conn:
        conn.execute(text('DROP SCHEMA IF EXISTS "%s" CASCADE' % schema))
