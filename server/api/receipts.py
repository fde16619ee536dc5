"""Stored receipts for operators.

    GET /api/v1/receipts                  ?q=&device=&from=&to=&limit= with extracted fields
    GET /api/v1/receipts/{device}/{seq}   lines, fields, items, payments
"""
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request

from tilltap.api.deps import (
    OPERATOR_RESPONSES,
    engine,
    operator,
    plain,
    query_date,
    row_limit,
    rows_json,
)
from tilltap.storage import receipts
from tilltap_fw import protocol

router = APIRouter(responses=OPERATOR_RESPONSES)


@router.get("/api/v1/receipts")
def search_receipts(request: Request, q: str | None = None, device: str | None = None,
                    limit: int = 50, user=Depends(operator), engine=Depends(engine)):
    """Newest first; q matches store, receipt number, member ID or an item name."""
    params = request.query_params        # "from" is a Python keyword, so read it here
    rows = receipts.search(engine, q, device, query_date(params.get("from"), "from"),
                           query_date(params.get("to"), "to"), row_limit(limit))
    return {"receipts": rows_json(rows)}


@router.get("/api/v1/receipts/{device_id}/{seq}",
            responses={404: {"description": "no such receipt"}})
def receipt(device_id: str, seq: Annotated[int, Path(ge=0, le=protocol.MAX_SEQ)],
            user=Depends(operator), engine=Depends(engine)):
    found = receipts.detail(engine, device_id, seq)
    if found is None:
        raise HTTPException(404, "no receipt %s/%d" % (device_id, seq))
    for key in ("items", "payments"):
        found[key] = rows_json(found[key])
    return {k: v if k in ("items", "payments", "lines", "codes") else plain(v)
            for k, v in found.items()}
