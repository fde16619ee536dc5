"""Data migrations: each runs once per database, in order, when `tilltap serve` starts.

Tables are created by database.make_engine (metadata.create_all); what a new version derives
from rows stored by an older one is filled here. A migration is recorded in schema_migrations
once it has run to the end, so an interrupted one runs again (each is written to be safe to
repeat), and several server processes starting together on one PostgreSQL may run one twice,
harmlessly.
"""
import logging

from sqlalchemy import and_, inspect, select, text

from tilltap.ingest.text import record_text
from tilltap.storage.database import insert, utcnow
from tilltap.storage.schema import receipt_fields, receipt_text, receipts, schema_migrations

log = logging.getLogger("tilltap.migrations")

_BATCH = 500



def fill_receipt_text(engine):
    """receipt_text rows for receipts stored before the server decoded lines at ingest (their
    undecoded lines reached extraction as null); returns how many were filled."""
    r, t = receipts, receipt_text
    missing = (select(r.c.device_id, r.c.seq, r.c.record)
               .outerjoin(t, and_(t.c.device_id == r.c.device_id, t.c.seq == r.c.seq))
               .where(t.c.seq.is_(None)).order_by(r.c.device_id, r.c.seq).limit(_BATCH))
    done = 0
    while True:
        with engine.begin() as conn:
            found = conn.execute(missing).all()
            if found:
                conn.execute(insert(engine, t).on_conflict_do_nothing(),
                             [record_text(rec).row(device, seq) for device, seq, rec in found])
        done += len(found)
        if len(found) < _BATCH:
            return done


def add_receipt_status(engine):
    """receipt_fields.status and .reason on a database created before receipts had a status
    (create_all adds tables, not columns); the rows stored before were all complete."""
    schema = engine.get_execution_options().get("schema_translate_map", {}).get(None)
    have = {c["name"] for c in inspect(engine).get_columns(receipt_fields.name, schema=schema)}
    table = engine.dialect.identifier_preparer.quote(receipt_fields.name)
    if schema:
        table = engine.dialect.identifier_preparer.quote_schema(schema) + "." + table
    wanted = (("status", "VARCHAR(16) NOT NULL DEFAULT 'complete'"), ("reason", "VARCHAR(32)"))
    added = [name for name, _ in wanted if name not in have]
    with engine.begin() as conn:
        for name, kind in wanted:
            if name in added:
                conn.execute(text("ALTER TABLE %s ADD COLUMN %s %s" % (table, name, kind)))
    return len(added)


MIGRATIONS = (
    ("receipt_text", fill_receipt_text),
    ("receipt_status", add_receipt_status),
)


def migrate(engine):
    """Runs the migrations this database has not had yet; returns their names."""
    with engine.connect() as conn:
        applied = set(conn.execute(select(schema_migrations.c.name)).scalars())
    ran = []
    for name, step in MIGRATIONS:
        if name in applied:
            continue
        count = step(engine)
        log.info("migration %s: %s rows", name, count)
        with engine.begin() as conn:
            conn.execute(insert(engine, schema_migrations).on_conflict_do_nothing(),
                         [{"name": name, "applied_at": utcnow()}])
        ran.append(name)
    return ran
