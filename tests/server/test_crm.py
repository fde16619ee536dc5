"""CRM: customer CSV import (upsert by member ID, per-row errors, extra columns as attributes)
and receipts re-linked, against SQLite and PostgreSQL."""
import analysis_data as data
import pytest
from sqlalchemy import select

from tilltap.analysis import crm
from tilltap.storage import database, schema


@pytest.fixture
def engine(db_target):
    engine = database.make_engine(db_target.url, schema=db_target.schema)
    yield engine
    engine.dispose()


def _customers(engine):
    with engine.connect() as conn:
        return {r.member_id or r.phone: r for r in conn.execute(select(schema.customers))}


def test_import_upserts_by_member_id_and_reports_bad_rows(engine):
    imported, errors = crm.import_csv(engine, data.CUSTOMERS_CSV)
    assert (imported, errors) == (3, [])
    again = ("Member_ID,Name,Email,Tier,Store\n"
             "11111111,Alice B.,alice@example.org,,Berlin\n"
             ",Nobody,,,\n"
             "33333333,Dan,not-an-email,,\n"
             "44444444,Eve,,x,y,z\n"
             "55555555,Frank,,,\n")
    imported, errors = crm.import_csv(engine, again.encode())
    assert imported == 2
    assert errors == [(3, "needs a member_id or a phone"),
                      (4, "email 'not-an-email' is not an e-mail address"),
                      (5, "more values than header columns")]
    rows = _customers(engine)
    assert len(rows) == 4
    alice = rows["11111111"]
    assert alice.name == "Alice B." and alice.attributes == {"tier": "gold", "store": "Berlin"}
    assert rows["+49 170 1234567"].phone_key == "701234567"  # matches "0170 1234567" too


def test_a_header_without_keys_is_refused_whole(engine):
    assert crm.import_csv(engine, "name,email\nA,a@b.cd\n") == (
        0, [(1, "header needs a member_id or phone column (got: name, email)")])


def test_import_links_receipts_already_stored(engine):
    data.load(engine)  # imports the customers after the receipts were extracted
    with engine.connect() as conn:
        linked = conn.execute(select(schema.receipt_fields.c.seq)
                              .where(schema.receipt_fields.c.customer_id.is_not(None))
                              .order_by("device_id", "seq")).scalars().all()
    assert len(linked) == 4  # Alice twice, Bob, Carol by phone
    customer_id = crm.add(engine, crm.Customer(member_id="99", name="Zoe", phone="0301234567"))
    assert _customers(engine)["99"].id == customer_id
    with pytest.raises(crm.CustomerError):
        crm.add(engine, crm.Customer(name="no keys"))
