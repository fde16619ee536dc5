"""Device ingest over HTTP, and health. Handlers are thin: authenticate, read a bounded body,
hand it to ingest.writer.Ingest, answer with its Result.

    POST /api/v1/ingest      batch (protocol.py) -> 200 {"acked": [...], "rejected": [...]}
    POST /api/v1/telemetry   telemetry report    -> 200 {"ok": true[, "retry_refused": n]}
    GET  /healthz            liveness and ingest counters

Devices authenticate with HTTP Basic (user = device ID, password = credential). Answers:
401 bad/revoked credential (nothing stored), 413 body over protocol.MAX_BATCH_BYTES,
400 unparseable batch, 422 when no record of the batch is valid, 503 when the database failed
(nothing acked; the device retries). A 200 lists exactly the committed seqs.
"""
import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from tilltap.accounts import devices
from tilltap.api.deps import basic_credentials
from tilltap_fw import protocol

router = APIRouter()


class _TooLarge(Exception):
    pass


async def _body(request, limit):
    """The request body, refusing more than limit bytes without reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status, reason, **extra):
    body = {"error": reason}
    body.update(extra)
    headers = {"WWW-Authenticate": 'Basic realm="tilltap"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


async def _authenticate(request):
    ingest = request.app.state.ingest
    device, secret = basic_credentials(request)
    ok = device is not None and await run_in_threadpool(devices.verify, ingest.engine, device,
                                                        secret)
    if not ok:
        ingest.count("auth_refused")
    return device if ok else None


async def _submit(request, limit, submit):
    ingest = request.app.state.ingest
    device = await _authenticate(request)
    if device is None:
        return None, _error(401, "unknown device, wrong or revoked credential")
    try:
        payload = await _body(request, limit)
    except _TooLarge:
        ingest.count("rejected_batches")
        return None, _error(413, "body larger than %d bytes" % limit)
    try:
        result = await asyncio.wrap_future(submit(device, payload))
    except Exception:
        return None, _error(503, "storage unavailable, retry later")
    return result, None


@router.post(protocol.HTTP_INGEST_PATH)
async def ingest_batch(request: Request):
    result, failure = await _submit(request, protocol.MAX_BATCH_BYTES,
                                    request.app.state.ingest.submit_batch)
    if failure is not None:
        return failure
    if result.error is not None:
        status = 422 if result.rejected else 400
        return _error(status, result.error,
                      rejected=[{"seq": s, "error": e} for s, e in result.rejected])
    return Response(result.ack_payload(), media_type="application/json")


@router.post(protocol.HTTP_TELEMETRY_PATH)
async def ingest_telemetry(request: Request):
    result, failure = await _submit(request, protocol.MAX_TELEMETRY_BYTES,
                                    request.app.state.ingest.submit_telemetry)
    if failure is not None:
        return failure
    if result.error is not None:
        return _error(400, result.error)
    if result.retry_refused is not None:  # an operator's request (protocol.py, Ack)
        return {"ok": True, "retry_refused": result.retry_refused}
    return {"ok": True}


@router.get("/healthz")
async def healthz(request: Request):
    body = {"ok": True, "ingest": request.app.state.ingest.stats()}
    status = request.app.state.status
    if status is not None:
        body.update(status())
    return body
