"""Customers (the CRM side) for operators.

    GET  /api/v1/customers          ?q=&limit=&offset= with visits, spend, last visit
    POST /api/v1/customers          {"member_id", "phone", "name", "email", "attributes"}
    POST /api/v1/customers/import   CSV upload (multipart field "file"), per-row errors
"""
import csv

from fastapi import APIRouter, Depends, HTTPException, Query, UploadFile
from pydantic import BaseModel, Field

from tilltap.analysis import crm
from tilltap.api.deps import (
    MAX_OFFSET,
    OPERATOR_RESPONSES,
    engine,
    operator,
    row_limit,
    rows_json,
)

router = APIRouter(responses=OPERATOR_RESPONSES)

MAX_IMPORT_BYTES = 20 * 1024 * 1024
# the upload as it comes: the CSV plus its multipart boundaries and part headers
MAX_IMPORT_BODY = MAX_IMPORT_BYTES + 64 * 1024


class CustomerIn(BaseModel):
    member_id: str | None = None
    phone: str | None = None
    name: str | None = None
    email: str | None = None
    attributes: dict = Field(default_factory=dict)


@router.get("/api/v1/customers")
def list_customers(q: str | None = None, limit: int = 100,
                   offset: int = Query(0, le=MAX_OFFSET),
                   user=Depends(operator), engine=Depends(engine)):
    return {"customers": rows_json(crm.list_customers(engine, q, row_limit(limit),
                                                      max(0, offset)))}


@router.post("/api/v1/customers")
def add_customer(body: CustomerIn, user=Depends(operator), engine=Depends(engine)):
    try:
        customer_id = crm.add(engine, crm.Customer(**body.model_dump()))
    except crm.CustomerError as e:
        raise HTTPException(422, str(e)) from None
    return {"id": customer_id}


@router.post("/api/v1/customers/import", max_body_size=MAX_IMPORT_BODY)
def import_customers(file: UploadFile, user=Depends(operator), engine=Depends(engine)):
    data = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise HTTPException(413, "CSV larger than %d bytes" % MAX_IMPORT_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HTTPException(422, "CSV must be UTF-8") from None
    try:
        imported, errors = crm.import_csv(engine, text)
    except csv.Error as e:      # a broken quote, a field over the csv module's limit
        raise HTTPException(422, "CSV is malformed: %s" % e) from None
    return {"imported": imported, "errors": [{"row": r, "error": e} for r, e in errors]}
