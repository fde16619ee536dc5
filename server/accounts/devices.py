"""Device registry: IDs and credentials (broker_files.py writes Mosquitto's files from it), and
operators' requests to devices (retry_refused).

Failure assumptions:
- The database can leak. Only hashes are stored: SHA-256 of the credential for the HTTP check
  (credentials are 192-bit random tokens we generate, so a fast hash cannot be brute-forced and
  keeps ingest cheap per request) and Mosquitto's own PBKDF2-SHA512 line for the broker.
- A revoked or unknown device must change nothing: HTTP refuses it (401), the broker refuses its
  login once the regenerated password file is loaded (SIGHUP), and until then the MQTT consumer
  drops its messages (it checks the registry, not just the broker).
- A device must not publish as another device: the ACL lets each user write only its own
  tilltap/<id>/receipts and /telemetry and read only its own tilltap/<id>/ack.
"""
import base64
import hashlib
import hmac
import os
import secrets

from sqlalchemy import select, update

from tilltap.storage import database, schema
from tilltap_fw import protocol_check

ROLES = ("device", "server")
_MOSQ_ITERATIONS = 101  # mosquitto_passwd's default for $7$


class DeviceError(ValueError):
    """A refused registry operation (bad ID, duplicate, unknown device)."""


def _sha256(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def mosquitto_hash(secret, salt=None, iterations=_MOSQ_ITERATIONS):
    """Mosquitto 2 password-file hash: $7$<iterations>$<salt b64>$<PBKDF2-SHA512 b64>."""
    salt = salt or os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations, 64)
    return "$7$%d$%s$%s" % (iterations, base64.b64encode(salt).decode(),
                            base64.b64encode(digest).decode())


def add(engine, device_id, role="device"):
    """Registers a device (or a server account for the MQTT consumer); returns its credential.

    The credential is shown once; only hashes are kept.
    """
    if role not in ROLES:
        raise DeviceError("role must be one of %s" % ", ".join(ROLES))
    if not protocol_check.valid_device_id(device_id):
        raise DeviceError("device ID must be 1-64 characters of 0-9 a-z _ -")
    secret = secrets.token_urlsafe(24)
    with engine.begin() as conn:
        if conn.execute(select(schema.devices.c.id)
                        .where(schema.devices.c.id == device_id)).first():
            raise DeviceError("%s is already registered" % device_id)
        conn.execute(schema.devices.insert().values(
            id=device_id, role=role, secret_sha256=_sha256(secret),
            mosquitto_hash=mosquitto_hash(secret), created_at=database.utcnow()))
    return secret


def revoke(engine, device_id):
    """Revokes a device: its credential stops working everywhere."""
    with engine.begin() as conn:
        done = conn.execute(update(schema.devices).where(
            schema.devices.c.id == device_id, schema.devices.c.revoked_at.is_(None)).values(
            revoked_at=database.utcnow())).rowcount
    if not done:
        raise DeviceError("%s is not an active device" % device_id)


def list_all(engine):
    """[{id, role, created_at, revoked_at}] ordered by ID."""
    with engine.connect() as conn:
        rows = conn.execute(select(schema.devices.c.id, schema.devices.c.role,
                                   schema.devices.c.created_at, schema.devices.c.revoked_at)
                            .order_by(schema.devices.c.id))
        return [dict(r._mapping) for r in rows]


def verify(engine, device_id, secret, role="device"):
    """True if device_id is active, has this role and this credential."""
    if not protocol_check.valid_device_id(device_id) or not secret:
        return False
    with engine.connect() as conn:
        row = conn.execute(select(schema.devices.c.secret_sha256).where(
            schema.devices.c.id == device_id, schema.devices.c.role == role,
            schema.devices.c.revoked_at.is_(None))).first()
    # Compare even when the device is unknown, so timing does not tell which IDs exist.
    expected = row[0] if row else "0" * 64
    return hmac.compare_digest(expected, _sha256(secret)) and row is not None


def active(conn, device_ids):
    """The subset of device_ids that are active devices (conn: an open Connection)."""
    if not device_ids:
        return set()
    rows = conn.execute(select(schema.devices.c.id).where(
        schema.devices.c.id.in_(sorted(device_ids)), schema.devices.c.role == "device",
        schema.devices.c.revoked_at.is_(None)))
    return {r[0] for r in rows}


def request_retry_refused(engine, device_id):
    """Asks a device to offer the records the server refused again; returns the request's
    number. The device gets it with the server's answer to its next telemetry report (HTTP or
    MQTT; the board reports every minute) and acts on it once."""
    table = schema.device_requests
    with engine.begin() as conn:
        if device_id not in active(conn, {device_id}):
            raise DeviceError("%s is not an active device" % device_id)
        row = conn.execute(select(table.c.retry_refused).where(
            table.c.device_id == device_id)).first()
        number = (row[0] if row else 0) + 1
        values = {"retry_refused": number, "requested_at": database.utcnow()}
        if row:
            conn.execute(update(table).where(table.c.device_id == device_id).values(**values))
        else:
            conn.execute(table.insert().values(device_id=device_id, retry_done=0, **values))
    return number


def pending_request(conn, device_id, report):
    """The retry_refused request to send with the answer to this telemetry report, or None.
    A report saying the device handled the latest request (uplink.retried) ends it."""
    table = schema.device_requests
    row = conn.execute(select(table.c.retry_refused, table.c.retry_done).where(
        table.c.device_id == device_id)).first()
    if row is None or row.retry_done == row.retry_refused:
        return None
    uplink = report.get("uplink")
    if isinstance(uplink, dict) and uplink.get("retried") == row.retry_refused:
        conn.execute(update(table).where(table.c.device_id == device_id).values(
            retry_done=row.retry_refused))
        return None
    return row.retry_refused
