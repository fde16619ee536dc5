"""Storage: the tables and the engine (SQLite with WAL by default, PostgreSQL by URL).

Failure assumptions:
- The process can be killed at any instant; what a COMMIT returned is on disk. SQLite runs in
  WAL mode with synchronous=FULL (a committed transaction survives power loss, not only a
  process crash), since an ack sent after commit lets the device delete its only copy.
- Several server processes can write at once (PostgreSQL); uniqueness of (device_id, seq) is
  the database's job (primary key + INSERT .. ON CONFLICT DO NOTHING), not the application's.
- Tests and several deployments can share one PostgreSQL: every table lives in a schema chosen
  at engine creation (schema_translate_map), "public" by default.
"""
import datetime

from sqlalchemy import (JSON, BigInteger, Boolean, Column, DateTime, Integer, LargeBinary,
                        MetaData, String, Table, Text, create_engine, event, text)
from sqlalchemy.dialects import postgresql, sqlite

DEFAULT_URL = "sqlite:///tilltap.db"

metadata = MetaData()

devices = Table(
    "devices", metadata,
    Column("id", String(64), primary_key=True),
    Column("role", String(16), nullable=False, default="device"),  # device | server
    Column("secret_sha256", String(64), nullable=False),
    Column("mosquitto_hash", Text, nullable=False),  # $7$ PBKDF2-SHA512 line for Mosquitto
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

receipts = Table(
    "receipts", metadata,
    Column("device_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("boot", Integer, nullable=False),
    Column("captured_at", BigInteger, nullable=False),  # Unix ms if time_synced, else uptime ms
    Column("time_synced", Boolean, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("record", JSON, nullable=False),  # the protocol record, without "raw"
    Column("raw_encoding", String(16)),
    Column("raw", LargeBinary),  # ESC/POS bytes as sent (raw deflate or identity)
)

# A record whose (device, seq) is already stored with other content: the device's spool was
# wiped (reflashed) and its seqs started again. Kept here, counted and logged, never dropped;
# acked like a duplicate so that the device moves on.
seq_conflicts = Table(
    "seq_conflicts", metadata,
    Column("device_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("boot", Integer, primary_key=True, autoincrement=False),
    Column("captured_at", BigInteger, primary_key=True, autoincrement=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("record", JSON, nullable=False),
    Column("raw_encoding", String(16)),
    Column("raw", LargeBinary),
)

# The text of each receipt as the server reads it (receipt_text.py): every line decoded with
# full codecs at ingest, cleaned and card-masked. Derived from receipts.record (which stays as
# received); extraction, search, reports and the dashboard read this.
receipt_text = Table(
    "receipt_text", metadata,
    Column("device_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("lines", JSON, nullable=False),
    Column("undecodable", Integer, nullable=False),   # lines with bytes no codec took (\xNN)
    Column("replaced", Integer, nullable=False),      # NUL / lone surrogates made U+FFFD
)

telemetry = Table(
    "telemetry", metadata,
    Column("device_id", String(64), primary_key=True),  # latest report per device
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("report", JSON, nullable=False),
)


def insert(engine, table):
    """INSERT for the engine's dialect, which knows ON CONFLICT (do nothing / do update)."""
    return (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(table)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


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
        # the analysis tables (fields, customers, templates, operators) share this metadata
        from tilltap import analysis_db  # noqa: F401
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
