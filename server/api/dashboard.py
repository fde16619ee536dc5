"""The dashboard: static files (server/dashboard/), which call the operator API."""
import os

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

DASHBOARD_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "dashboard")

router = APIRouter()


@router.get("/dashboard", include_in_schema=False)
def dashboard_root():
    return RedirectResponse("/dashboard/")


@router.get("/dashboard/{path:path}", include_in_schema=False)
def dashboard_file(path: str):
    """A file of server/dashboard/ (index.html for the folder); nothing outside it."""
    name = os.path.normpath(path or "index.html")
    full = os.path.join(DASHBOARD_DIR, name)
    if name.startswith("..") or os.path.isabs(name) or not os.path.isfile(full):
        raise HTTPException(404, "not found")
    return FileResponse(full, headers={"Cache-Control": "no-cache"})
