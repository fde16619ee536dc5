"""Ingest: validate a batch, store each (device, seq) once, and only then say which seqs to ack.

Shared by the HTTP API and the MQTT consumer. One writer thread per process commits the
batches of all connections together (group commit): one transaction and one fsync for many
batches, which is what makes thousands of receipts per second possible on SQLite, whose single
writer would otherwise serialise one fsync per batch.

Failure assumptions:
- Payloads can be garbage, truncated, oversized, from old firmware or from the future; a bad
  record must not stop the good ones of its batch, and nothing bad may crash the process.
- The same record arrives many times (device resends after a lost ack, broker redelivery, two
  consumers): INSERT .. ON CONFLICT DO NOTHING makes the store idempotent, and a record that
  is already stored is acked again (that is the point of resending).
- The process can die at any point. The ack callback runs strictly after COMMIT returned, so
  a kill before the commit loses nothing (the device still has it) and a kill between commit
  and ack only causes a resend, which stores nothing new.
- The database can be unavailable: the batch's future fails, nothing is acked, the device
  retries later.
"""
import json
import logging
import queue
import threading
import time
from concurrent.futures import Future

from sqlalchemy import select, tuple_

from tilltap.accounts import devices
from tilltap.ingest.rawbytes import checked_raw
from tilltap.ingest.text import record_text
from tilltap.storage import database, schema
from tilltap_fw import protocol, protocol_check

log = logging.getLogger("tilltap.ingest")

_STOP = object()


class Result:
    """What became of one batch (seqs to ack, records refused with reasons, envelope error) or
    telemetry report (an operator's request to send back)."""

    def __init__(self, acked=(), rejected=(), error=None, new=0):
        self.acked = list(acked)
        self.rejected = list(rejected)   # [(seq or None, reason)]
        self.refused = len(self.rejected)  # records refused (a seq also acked is not listed)
        self.error = error               # the whole batch was refused: why
        self.new = new                   # records stored by this batch (not duplicates)
        self.retry_refused = None        # telemetry: request to send (devices.pending_request)

    def ack_payload(self):
        """The ack message/body for the device."""
        return protocol_check.encode_ack(self.acked, self.rejected, self.retry_refused)


def prepare(device, payload, now_ms):
    """(rows to insert, Result with rejections or an error): validation, no database.

    device: the authenticated device (HTTP credential or MQTT topic). A seq sent twice in the
    batch is treated as if sent in two batches: the same content once, other content kept in
    seq_conflicts at commit. A seq ends up in exactly one of acked or rejected: a valid record
    wins over an invalid one with the same seq (the invalid one is still counted).
    """
    try:
        batch = protocol_check.parse_batch(payload, device)
    except protocol_check.ProtocolError as e:
        return [], Result(error=str(e))
    rows, rejected = [], []
    seen: dict[int, list] = {}      # seq: its rows of this batch
    check_size = len(payload) > protocol.MAX_RECORD_BYTES  # else no record can be too big
    for rec in batch["records"]:
        try:
            row = _row(rec, device, now_ms, check_size)
        except protocol_check.ProtocolError as e:
            seq = rec.get("seq") if isinstance(rec, dict) else None
            rejected.append((seq if protocol_check._is_int(seq) else None, str(e)))
            continue
        except Exception:   # a bug here must cost one record, never the batch or the writer
            log.exception("record of %s not readable", device)
            seq = rec.get("seq") if isinstance(rec, dict) else None
            rejected.append((seq if protocol_check._is_int(seq) else None, "unreadable record"))
            continue
        same = seen.setdefault(row["seq"], [])
        if any(r["record"] == row["record"] and r["raw"] == row["raw"] for r in same):
            continue            # sent twice in this batch: stored and acked once
        same.append(row)
        rows.append(row)
    result = Result(rejected=rejected)
    result.refused = len(rejected)
    # a seq also stored from this batch is acked: listing it as rejected too would tell the
    # device both to delete and to keep the one record it holds under that seq
    result.rejected = [(s, e) for s, e in rejected if s not in seen]
    if not rows and rejected:
        result.error = "no valid record in the batch"
    return rows, result


def _row(rec, device, now_ms, check_size):
    """The receipts row (with its text) of one record; raises ProtocolError why not."""
    reason = protocol_check.validate_record(rec, device, now_ms)
    if reason is None and check_size and \
            len(json.dumps(rec).encode()) > protocol.MAX_RECORD_BYTES:
        reason = "record larger than %d bytes" % protocol.MAX_RECORD_BYTES
    if reason is not None:
        raise protocol_check.ProtocolError(reason)
    encoding, raw = None, None
    if "raw" in rec:
        encoding, raw = checked_raw(rec["raw"])
        rec = {k: v for k, v in rec.items() if k != "raw"}
    return {"device_id": device, "seq": rec["seq"], "boot": rec["boot"],
            "captured_at": rec["captured_at"], "time_synced": rec["time_synced"],
            "record": rec, "raw_encoding": encoding, "raw": raw, "text": record_text(rec)}


class Ingest:
    """The group-commit writer. submit_*() are thread-safe and return Futures of Results.

    check_devices: refuse batches of unknown or revoked devices at commit time (the MQTT path,
    where the broker authenticated the connection but the registry may have changed since).
    """

    def __init__(self, engine, max_group=512, check_devices=False):
        self.engine = engine
        self._max_group = max_group
        self._check_devices = check_devices
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._counts = {"batches": 0, "stored": 0, "duplicates": 0, "rejected_records": 0,
                        "rejected_batches": 0, "telemetry": 0, "commits": 0, "db_errors": 0,
                        "seq_conflicts": 0}
        self._thread = threading.Thread(target=self._run, name="tilltap-writer", daemon=True)
        self._thread.start()

    def count(self, name, n=1):
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def stats(self):
        with self._lock:
            return dict(self._counts)

    def submit_batch(self, device, payload, on_done=None):
        """Validates now, commits in the writer thread; on_done(result) runs after the commit
        (in the writer thread), or at once when nothing needs committing."""
        rows, result = prepare(device, payload, int(time.time() * 1000))
        if result.refused:
            self.count("rejected_records", result.refused)
        if result.error:
            self.count("rejected_batches")
            log.warning("batch from %s refused: %s", device, result.error)
        elif result.rejected:
            log.warning("batch from %s: %d records refused, first: %s", device,
                        len(result.rejected), result.rejected[0][1])
        if not rows:
            return self._done(Future(), on_done, result)
        fut: Future = Future()
        self._queue.put(("batch", device, rows, result, fut, on_done))
        return fut

    def submit_telemetry(self, device, payload, on_done=None):
        """Validates a telemetry report and keeps it as the device's latest."""
        try:
            report = protocol_check.parse_telemetry(payload, device)
        except protocol_check.ProtocolError as e:
            self.count("rejected_batches")
            return self._done(Future(), on_done, Result(error=str(e)))
        fut: Future = Future()
        self._queue.put(("telemetry", device, report, Result(), fut, on_done))
        return fut

    def close(self):
        """Commits what is queued, then stops the writer."""
        self._queue.put(_STOP)
        self._thread.join()

    def _done(self, fut, on_done, result):
        if on_done:
            try:
                on_done(result)
            except Exception:  # a failed ack publish must not stop the writer
                log.exception("ack callback failed")
        fut.set_result(result)
        return fut

    def _run(self):
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            group = [job]
            stop = False
            while len(group) < self._max_group:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stop = True
                    break
                group.append(job)
            self._commit(group)
            if stop:
                return

    def _keep_conflicts(self, conn, duplicates):
        """Stores duplicates whose content differs from the stored record (a reused seq)."""
        if not duplicates:
            return
        keys = [(r["device_id"], r["seq"]) for r in duplicates]
        stored = {(row.device_id, row.seq): row.record for row in conn.execute(
            select(schema.receipts.c.device_id, schema.receipts.c.seq, schema.receipts.c.record)
            .where(tuple_(schema.receipts.c.device_id, schema.receipts.c.seq).in_(keys)))}
        conflicts = [r for r in duplicates
                     if stored.get((r["device_id"], r["seq"])) not in (None, r["record"])]
        if conflicts:
            insert = database.insert(self.engine, schema.seq_conflicts)
            new = conn.execute(insert.on_conflict_do_nothing().returning(
                schema.seq_conflicts.c.seq), [
                {k: r[k] for k in ("device_id", "seq", "boot", "captured_at", "received_at",
                                   "record", "raw_encoding", "raw")} for r in conflicts]).all()
            if new:
                self.count("seq_conflicts", len(new))
                log.error("%d records reuse a stored seq with other content (device spool "
                          "wiped?): kept in seq_conflicts, e.g. %s seq %d", len(new),
                          conflicts[0]["device_id"], conflicts[0]["seq"])

    def _store(self, group):
        """Stores a group's batches and telemetry in one transaction; returns the (device, seq)
        keys inserted. A key twice in the group is inserted once, the first; the later ones
        are duplicates (acked) or, with other content, seq conflicts."""
        with self.engine.begin() as conn:
            if self._check_devices:
                allowed = devices.active(conn, {j[1] for j in group})
                for job in group:
                    if job[1] not in allowed:
                        job[3].error = "unknown or revoked device"
                group_ok = [j for j in group if j[3].error is None]
            else:
                group_ok = group
            first, later = {}, []
            for job in group_ok:
                if job[0] == "batch":
                    for r in job[2]:
                        key = (r["device_id"], r["seq"])
                        if key in first:
                            later.append(r)
                        else:
                            first[key] = r
            inserted = set()
            if first:
                stmt = database.insert(self.engine, schema.receipts).on_conflict_do_nothing(
                    index_elements=["device_id", "seq"]).returning(
                    schema.receipts.c.device_id, schema.receipts.c.seq)
                now = database.utcnow()
                for r in list(first.values()) + later:
                    r["received_at"] = now
                inserted = {tuple(r) for r in conn.execute(stmt, list(first.values()))}
                if inserted:
                    conn.execute(schema.receipt_text.insert(),
                                 [first[k]["text"].row(*k) for k in inserted])
                self._keep_conflicts(conn, [r for k, r in first.items() if k not in inserted]
                                     + later)
            for job in group_ok:
                if job[0] == "telemetry":
                    stmt = database.insert(self.engine, schema.telemetry).values(
                        device_id=job[1], received_at=database.utcnow(), report=job[2])
                    conn.execute(stmt.on_conflict_do_update(
                        index_elements=["device_id"],
                        set_={"received_at": stmt.excluded.received_at,
                              "report": stmt.excluded.report}))
                    job[3].retry_refused = devices.pending_request(conn, job[1], job[2])
        return inserted

    def _commit(self, group):
        """Commits a group and answers its jobs. The group shares one transaction; when the
        database refuses the data of one job (not an outage), the jobs are committed again one
        by one, and a batch alone record by record, so that a record the database cannot
        store is rejected on its own and fails no other record or device."""
        try:
            inserted = self._store(group)
        except Exception as e:
            if not database.unavailable(e) and len(group) > 1:
                log.warning("commit of %d jobs failed (%s): committing them one by one",
                            len(group), _short(e))
                for job in group:
                    self._commit([job])
                return
            try:
                if database.unavailable(e) or group[0][0] != "batch":
                    raise
                inserted = self._store_each(group[0], e)
            except Exception as failed:
                self.count("db_errors")
                log.error("commit of %d jobs failed: %s", len(group), _short(failed))
                for job in group:
                    job[4].set_exception(failed)
                return
        # Committed. Only now may anything be acked.
        self.count("commits")
        for kind, device, payload, result, fut, on_done in group:
            if result.error is None and kind == "batch":
                result.acked = list(dict.fromkeys(r["seq"] for r in payload))
                result.new = sum(1 for s in result.acked if (device, s) in inserted)
                inserted.difference_update((device, s) for s in result.acked)
                self.count("batches")
                self.count("stored", result.new)
                self.count("duplicates", len(result.acked) - result.new)
            elif result.error is None:
                self.count("telemetry")
            self._done(fut, on_done, result)

    def _store_each(self, job, error):
        """Stores a batch the database refused as a whole record by record: each record it
        refuses is rejected (the device sets it aside), the others are stored. Returns the
        keys inserted; the job's rows become those stored."""
        _kind, device, rows, result, _fut, _on_done = job
        log.error("batch from %s not storable as a whole (%s): storing it record by record",
                  device, _short(error))
        inserted, kept = set(), []
        for row in rows:
            try:
                inserted |= self._store([("batch", device, [row], result, None, None)])
            except Exception as e:
                if database.unavailable(e):
                    raise
                self.count("rejected_records")
                self.count("unstorable_records")
                result.rejected.append((row["seq"], "not storable: %s" % type(e).__name__))
                continue
            kept.append(row)
        stored = {r["seq"] for r in kept}
        result.rejected = [(s, e) for s, e in result.rejected if s not in stored]
        rows[:] = kept
        if not kept:
            result.error = "no valid record in the batch"
        return inserted


def _short(error):
    """The first line of an error (SQLAlchemy's carry the statement and its parameters)."""
    return str(error).split("\n", 1)[0][:200]
