"""Reports for operators, as JSON or CSV.

    GET /api/v1/reports          names of the reports
    GET /api/v1/reports/{name}   ?from=YYYY-MM-DD&to=&store=&limit=&hours=&format=csv
"""
from fastapi import APIRouter, Depends, HTTPException, Query, Request

from tilltap.analysis.reports import REPORTS, ReportQuery
from tilltap.api.deps import (
    MAX_HOURS,
    OPERATOR_RESPONSES,
    csv_response,
    engine,
    operator,
    query_date,
    row_limit,
    rows_json,
)

router = APIRouter(responses=OPERATOR_RESPONSES)


@router.get("/api/v1/reports")
def report_names(user=Depends(operator)):
    return {"reports": sorted(REPORTS)}


@router.get("/api/v1/reports/{name}", responses={
    200: {"content": {"text/csv": {}}, "description": "rows as JSON, or CSV with format=csv"},
    404: {"description": "no such report"}})
def report(name: str, request: Request, store: str | None = None, limit: int = 20,
           hours: int = Query(24, le=MAX_HOURS), format: str = "json", user=Depends(operator),
           engine=Depends(engine)):
    if name not in REPORTS:
        raise HTTPException(404, "no report %r (see /api/v1/reports)" % name)
    params = request.query_params  # "from" is a Python keyword, so read it here
    query = ReportQuery(start=query_date(params.get("from"), "from"),
                        end=query_date(params.get("to"), "to"), store=store or None,
                        limit=row_limit(limit), hours=max(0, hours))
    rows = REPORTS[name](engine, query)
    if format == "csv":
        return csv_response(rows, "%s.csv" % name)
    return {"report": name, "rows": rows_json(rows)}
