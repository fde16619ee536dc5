"""Every table of the server, in one place (one MetaData: make_engine creates them all).

Ingest: devices (the registry), receipts (each record as received, raw bytes apart),
receipt_text (its text as the server reads it), seq_conflicts, telemetry, device_requests.
Analysis, derived from receipts and rebuilt by `tilltap reextract`: receipt_ocr, receipt_fields,
receipt_items, receipt_payments, extraction_errors and the report summaries item_months and
receipt_num_days.
Entered by people: customers, layout_templates, operators, operator_sessions.
schema_migrations records the data migrations that ran (migrations.py).

receipt_dt is the local date and time printed on the receipt (no time zone: a store's sales day
is its local day); when nothing is printed it falls back to the capture time in UTC.
"""
from sqlalchemy import (
                        JSON,
                        BigInteger,
                        Boolean,
                        Column,
                        DateTime,
                        Float,
                        ForeignKeyConstraint,
                        Index,
                        Integer,
                        LargeBinary,
                        MetaData,
                        Numeric,
                        String,
                        Table,
                        Text,
)

metadata = MetaData()

# ---- ingest ---------------------------------------------------------------------------------

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

# An operator's request to a device (`tilltap devices retry-refused ID`): offer the records the
# server refused again. retry_refused numbers the requests; the server sends the latest with its
# answers to the device's telemetry until the device reports it handled (retry_done).
device_requests = Table(
    "device_requests", metadata,
    Column("device_id", String(64), primary_key=True),
    Column("retry_refused", Integer, nullable=False),
    Column("retry_done", Integer, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
)

# ---- analysis -------------------------------------------------------------------------------

AMOUNT = Numeric(14, 2)
QUANTITY = Numeric(14, 3)  # weighed goods: "0.512" kg

# The text OCR read in a raster-only receipt (server/ocr.py): read once, kept for every later
# extraction (OCR takes seconds, extraction milliseconds).
receipt_ocr = Table(
    "receipt_ocr", metadata,
    Column("device_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("lines", JSON, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("read_at", DateTime(timezone=True), nullable=False),
)

# A receipt the extractor failed on (a rule's bug, data a column refuses): skipped by
# extract_pending from then on so that it holds up no other receipt, counted on the fleet
# report; `tilltap reextract` tries it again (and drops the row once it extracts).
extraction_errors = Table(
    "extraction_errors", metadata,
    Column("device_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("error", String(200), nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False),
)

customers = Table(
    "customers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("member_id", String(64), unique=True),
    Column("phone", String(32)),
    # Last 9 digits of the phone: "+49 30 1234567" and "030 1234567" give the same key.
    Column("phone_key", String(16), index=True),
    Column("name", String(200)),
    Column("email", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("attributes", JSON, nullable=False, default=dict),  # extra CSV columns
)

receipt_fields = Table(
    "receipt_fields", metadata,
    Column("device_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("store", String(200)),
    Column("receipt_no", String(64)),
    # Trailing digits of receipt_no: the running number whose gaps are unreported sales.
    Column("receipt_num", BigInteger),
    Column("receipt_dt", DateTime),
    Column("total", AMOUNT),
    Column("currency", String(3)),
    Column("payment_types", String(100)),  # sorted, comma-separated: "card,cash"
    Column("member_id", String(64)),
    Column("phone_key", String(16)),
    Column("customer_id", Integer),
    Column("item_count", Integer, nullable=False, default=0),
    Column("refund", Boolean, nullable=False, default=False),
    Column("void", Boolean, nullable=False, default=False),
    Column("template", Boolean, nullable=False, default=False),  # a layout template was applied
    Column("extracted_at", DateTime(timezone=True), nullable=False),
    # the record's status (receipt.STATUSES): reports count "complete" receipts only
    Column("status", String(16), nullable=False, server_default="complete"),
    Column("reason", String(32)),       # why one is incomplete: cut_in_payload, ...
)
# The report queries filter by date and group by store; the covering columns let SQLite and
# PostgreSQL answer sales reports from the index alone.
Index("ix_receipt_fields_dt", receipt_fields.c.receipt_dt, receipt_fields.c.store,
      receipt_fields.c.total)
Index("ix_receipt_fields_store_num", receipt_fields.c.store, receipt_fields.c.receipt_num)
Index("ix_receipt_fields_member", receipt_fields.c.member_id)
# void in the key: a customer's first sales visit (new_vs_returning) from the index alone.
Index("ix_receipt_fields_customer_void", receipt_fields.c.customer_id, receipt_fields.c.void,
      receipt_fields.c.receipt_dt)
# A store's receipts of a day or month: the summaries below are recomputed per such group.
Index("ix_receipt_fields_store_dt", receipt_fields.c.store, receipt_fields.c.receipt_dt,
      receipt_fields.c.device_id, receipt_fields.c.receipt_num)

receipt_items = Table(
    "receipt_items", metadata,
    Column("device_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("line_no", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200)),
    Column("qty", QUANTITY),
    Column("unit_price", AMOUNT),
    Column("amount", AMOUNT),
    Column("sku", String(32)),
    ForeignKeyConstraint(["device_id", "seq"], ["receipt_fields.device_id", "receipt_fields.seq"],
                         ondelete="CASCADE"),
)

receipt_payments = Table(
    "receipt_payments", metadata,
    Column("device_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("line_no", Integer, primary_key=True, autoincrement=False),
    Column("type", String(16), nullable=False),  # cash, card, wechat, alipay
    Column("amount", AMOUNT),
    ForeignKeyConstraint(["device_id", "seq"], ["receipt_fields.device_id", "receipt_fields.seq"],
                         ondelete="CASCADE"),
)

# Summaries for the reports that would otherwise read every receipt of a long range. Both are
# derived from receipt_fields/receipt_items: extraction updates the groups a
# batch touches, summaries.rebuild recomputes everything (after `tilltap reextract`).
# A missing store or date is '' here (they are key columns).

# top_items: per month and store, the items of sales receipts (not void, not refund).
item_months = Table(
    "item_months", metadata,
    Column("month", String(7), primary_key=True),     # 'YYYY-MM' of receipt_dt
    Column("store", String(200), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("qty", Numeric(18, 3)),                    # None when no line had a quantity
    Column("amount", Numeric(18, 2)),
    Column("lines", Integer, nullable=False),         # item lines (top_items "receipts")
)

# receipt_gaps: per printer, store and day, the receipt numbers' range and the gaps inside it.
receipt_num_days = Table(
    "receipt_num_days", metadata,
    Column("device_id", String(64), primary_key=True),
    Column("store", String(200), primary_key=True),
    Column("day", String(10), primary_key=True),      # 'YYYY-MM-DD' of receipt_dt
    Column("min_num", BigInteger, nullable=False),
    Column("max_num", BigInteger, nullable=False),
    Column("gaps", JSON, nullable=False),             # [[after_no, before_no], ...] sorted
)

layout_templates = Table(
    "layout_templates", metadata,
    Column("device_id", String(64), primary_key=True),
    Column("template", JSON, nullable=False),  # as extract.load_template accepts it
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

operators = Table(
    "operators", metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", Text, nullable=False),  # scrypt$n$r$p$salt$hash
    Column("created_at", DateTime(timezone=True), nullable=False),
)

operator_sessions = Table(
    "operator_sessions", metadata,
    Column("token_sha256", String(64), primary_key=True),  # the cookie holds the token itself
    Column("username", String(64), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# ---- migrations -----------------------------------------------------------------------------

schema_migrations = Table(
    "schema_migrations", metadata,
    Column("name", String(64), primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)
