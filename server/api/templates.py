"""Layout templates for operators: one per printer, overriding the built-in rules there.

    GET  /api/v1/templates/{device_id}
    PUT  /api/v1/templates/{device_id}        checked (extract.load_template); re-extracts
    POST /api/v1/templates/{device_id}/test   {"template", "seq"}: what a draft template
                                              extracts from that stored receipt (nothing stored)
"""
from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException
from pydantic import BaseModel, Field

from tilltap.analysis import extraction
from tilltap.analysis.extract import TemplateError, load_template
from tilltap.api.deps import OPERATOR_RESPONSES, engine, operator, plain
from tilltap.ingest.text import clean_value
from tilltap.storage import templates
from tilltap_fw import protocol
from tilltap_fw.protocol_check import valid_device_id

router = APIRouter(responses=OPERATOR_RESPONSES)
# a layout template is a few rules per field: far below this
MAX_TEMPLATE_BYTES = 256 * 1024
NOT_FOUND: dict[int | str, dict] = {404: {"description": "no such template, printer or receipt"}}


@router.get("/api/v1/templates/{device_id}", responses=NOT_FOUND)
def get_template(device_id: str, user=Depends(operator), engine=Depends(engine)):
    found = templates.get(engine, device_id)
    if found is None:
        raise HTTPException(404, "no template for %s" % device_id)
    return {"device_id": device_id, "template": found[0], "updated_at": plain(found[1])}


@router.put("/api/v1/templates/{device_id}", max_body_size=MAX_TEMPLATE_BYTES)
def put_template(device_id: str, template: dict, tasks: BackgroundTasks,
                 user=Depends(operator), engine=Depends(engine)):
    """Stores a checked template and re-extracts the printer's receipts in the background."""
    if not valid_device_id(device_id):
        raise HTTPException(422, "not a device ID: 1..64 of [0-9a-z_-]")
    if clean_value(template) != template:
        raise HTTPException(422, "template holds a NUL or an unpaired surrogate")
    try:
        load_template(template)
    except TemplateError as e:
        raise HTTPException(422, str(e)) from None
    templates.put(engine, device_id, template)
    tasks.add_task(extraction.reextract_all, engine, None, device_id)
    return {"device_id": device_id, "reextracting": True}


class TemplateTest(BaseModel):
    template: dict
    seq: int = Field(ge=0, le=protocol.MAX_SEQ)   # beyond the spool's seqs: 422, not a 500


@router.post("/api/v1/templates/{device_id}/test", max_body_size=MAX_TEMPLATE_BYTES,
             responses=NOT_FOUND)
def test_template(device_id: str, body: TemplateTest, user=Depends(operator),
                  engine=Depends(engine)):
    """A draft template run on one stored receipt of the printer: "template" what its own rules
    find (None where a rule finds nothing), "fields" the receipt's fields with it applied.
    Nothing is stored."""
    try:
        return extraction.try_template(engine, device_id, body.seq, body.template)
    except TemplateError as e:
        raise HTTPException(422, str(e)) from None
    except LookupError as e:
        raise HTTPException(404, str(e)) from None
