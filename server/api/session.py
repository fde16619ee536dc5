"""Operator login for the dashboard and the API: a session cookie.

    POST /api/v1/login   {"username", "password"} -> session cookie
    POST /api/v1/logout
    GET  /api/v1/me      the logged-in operator
"""
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from tilltap.accounts import operators
from tilltap.api.deps import OPERATOR_RESPONSES, SESSION_COOKIE, check_login, engine, operator

router = APIRouter(responses=OPERATOR_RESPONSES)
# {"username": 64 characters, "password": 200} as JSON with room for escapes
MAX_LOGIN_BYTES = 4096


class Login(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=200)


@router.post("/api/v1/login", max_body_size=MAX_LOGIN_BYTES)
def login(body: Login, request: Request, engine=Depends(engine)):
    """A session cookie for an operator's login; failed logins back off (429, Retry-After)."""
    if not check_login(request, engine, body.username, body.password):
        raise HTTPException(401, "wrong username or password")
    response = JSONResponse({"username": body.username})
    # HttpOnly and SameSite=Strict keep scripts and other sites from riding on it; Secure
    # when the request came over TLS (the scheme a trusted proxy forwards counts)
    response.set_cookie(SESSION_COOKIE, operators.start_session(engine, body.username),
                        max_age=operators.SESSION_HOURS * 3600, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response


@router.post("/api/v1/logout")
def logout(request: Request, engine=Depends(engine)):
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        operators.end_session(engine, token)
    response = JSONResponse({"ok": True})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/api/v1/me")
def me(user=Depends(operator)):
    return {"username": user}
