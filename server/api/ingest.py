"""Device ingest over HTTP, and health. Handlers are thin: authenticate, read a bounded body,
hand it to ingest.writer.Ingest, answer with its Result.

    POST /api/v1/ingest      batch (protocol.py) -> 200 {"acked": [...], "rejected": [...]}
    POST /api/v1/telemetry   telemetry report    -> 200 {"ok": true[, "retry_refused": n]}
    GET  /healthz            liveness; ingest counters with the monitoring token or a login

Devices authenticate with HTTP Basic (user = device ID, password = credential). Answers:
401 bad/revoked credential (nothing stored), 413 body over protocol.MAX_BATCH_BYTES (the
route's max_body_size: refused before it is read),
400 unparseable batch, 422 when no record of the batch is valid, 503 when the database failed
(nothing acked; the device retries). A 200 lists exactly the committed seqs.
"""
import asyncio
import hmac

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from tilltap.accounts import devices
from tilltap.api.deps import basic_credentials, logged_in
from tilltap_fw import protocol

router = APIRouter()
DEVICE_RESPONSES: dict[int | str, dict] = {
    400: {"description": "unparseable batch or telemetry"},
    401: {"description": "unknown device, wrong or revoked credential"},
    413: {"description": "body larger than the protocol's limit"},
    422: {"description": "no record of the batch is valid"},
    503: {"description": "storage unavailable: nothing acked, retry later"},
}


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


async def _submit(request, submit):
    ingest = request.app.state.ingest
    device = await _authenticate(request)
    if device is None:
        return None, _error(401, "unknown device, wrong or revoked credential")
    try:
        payload = await request.body()
    except HTTPException as e:   # the route's max_body_size, as a chunked body streams in
        if e.status_code == 413:
            ingest.count("rejected_batches")
        raise
    try:
        result = await asyncio.wrap_future(submit(device, payload))
    except Exception:
        return None, _error(503, "storage unavailable, retry later")
    return result, None


@router.post(protocol.HTTP_INGEST_PATH, max_body_size=protocol.MAX_BATCH_BYTES,
             responses=DEVICE_RESPONSES)
async def ingest_batch(request: Request):
    result, failure = await _submit(request, request.app.state.ingest.submit_batch)
    if failure is not None:
        return failure
    if result.error is not None:
        status = 422 if result.rejected else 400
        return _error(status, result.error,
                      rejected=[{"seq": s, "error": e} for s, e in result.rejected])
    return Response(result.ack_payload(), media_type="application/json")


@router.post(protocol.HTTP_TELEMETRY_PATH, max_body_size=protocol.MAX_TELEMETRY_BYTES,
             responses=DEVICE_RESPONSES)
async def ingest_telemetry(request: Request):
    result, failure = await _submit(request, request.app.state.ingest.submit_telemetry)
    if failure is not None:
        return failure
    if result.error is not None:
        return _error(400, result.error)
    if result.retry_refused is not None:  # an operator's request (protocol.py, Ack)
        return {"ok": True, "retry_refused": result.retry_refused}
    return {"ok": True}


def _monitor(request):
    """True if the request may see counters: the monitoring token as a Bearer token, or an
    operator's login (the same back-off as everywhere for a wrong Basic password)."""
    token = request.app.state.settings.monitor_token
    header = request.headers.get("authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[7:].encode(), token.encode())
    return logged_in(request, request.app.state.engine) is not None


@router.get("/healthz", responses={429: {"description": "too many failed logins"}})
async def healthz(request: Request):
    """{"ok": true} for anyone (a load balancer's probe); ingest counters and the MQTT state
    only with the monitoring token (Authorization: Bearer) or an operator's login."""
    body: dict = {"ok": True}
    if await run_in_threadpool(_monitor, request):
        body["ingest"] = request.app.state.ingest.stats()
        status = request.app.state.status
        if status is not None:
            body.update(status())
    return body
