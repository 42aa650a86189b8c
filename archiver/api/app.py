"""The read side's aiohttp application: routes, token checks, the access log.

Every route but ``/healthz`` needs a read token. The provider-compatible routes answer
401 and 400 in their provider's own error shapes; the search API in JSON with the
parameter named. One access-log line per request names the token (never its value),
the path, the status and the duration. Nothing a client sends changes the archive,
except ``DELETE /api/v1/subjects/{phone}`` for a token with the ``erase`` permission.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import Any, Awaitable, Callable

import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from archiver import jsoncodec
from archiver.api import compat, search
from archiver.api.auth import COOKIE, Reader, Tokens, presented_token
from archiver.api.compat import BadParameter
from archiver.api.cursors import Cursors
from archiver.lifecycle.subjects import normalise

log = structlog.get_logger(__name__)
Eraser = Callable[[str], Awaitable[dict[str, int]]]
ENGINE, TOKENS, CURSORS, ERASER = (web.AppKey(n, object) for n in ("engine", "tokens", "cursors", "eraser"))
READER = web.RequestKey("reader", Reader)
SENDZEN_UNAUTHORIZED = {"message": "Unauthorized"}
INFOBIP_UNAUTHORIZED = {"requestError": {"serviceException": {"messageId": "UNAUTHORIZED",
                                                              "text": "Invalid login details"}}}
SCHEMES = {"/v1/logs": "Bearer", "/messenger/1/logs": "App"}
OPEN_PATHS = {"/healthz", "/login", "/session", "/"}
"""The page's shell holds no data; it asks for a token before it shows any."""


def build_app(engine: AsyncEngine, tokens: Tokens, cursors: Cursors, eraser: Eraser | None = None) -> web.Application:
    app = web.Application(middlewares=[access_log, authenticate])
    app[ENGINE], app[TOKENS], app[CURSORS], app[ERASER] = engine, tokens, cursors, eraser
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/v1/logs", sendzen_logs)
    app.router.add_get("/messenger/1/logs", infobip_logs)
    app.router.add_get("/api/v1/messages", list_messages)
    app.router.add_get("/api/v1/messages/{source}/{message_id}", show_message)
    app.router.add_delete("/api/v1/subjects/{phone}", erase_subject)
    app.router.add_get("/", page)
    app.router.add_post("/login", login)
    app.router.add_get("/session", session)
    app.router.add_post("/logout", logout)
    return app


@web.middleware
async def access_log(request: web.Request, handler: Any) -> web.StreamResponse:
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        reader = request.get(READER)
        log.info("api request", token=reader.name if reader else None, method=request.method, path=request.path,
                 status=status, duration_ms=round((time.monotonic() - started) * 1000, 1))


@web.middleware
async def authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path in OPEN_PATHS:
        return await handler(request)
    scheme = SCHEMES.get(request.path, "Bearer")
    token = presented_token(request.headers.get("Authorization"), scheme, request.cookies.get(COOKIE))
    reader = request.app[TOKENS].reader(token)  # type: ignore[attr-defined]
    if reader is None:
        return _unauthorized(request)
    request[READER] = reader
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return web.json_response({"error": "not found"}, status=404)


def _unauthorized(request: web.Request) -> web.Response:
    if request.path == "/v1/logs":
        return web.json_response(SENDZEN_UNAUTHORIZED, status=401)
    if request.path == "/messenger/1/logs":
        return web.json_response(INFOBIP_UNAUTHORIZED, status=401)
    return web.json_response({"error": "a valid read token is required"}, status=401)


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"healthy": True})


async def sendzen_logs(request: web.Request) -> web.Response:
    try:
        query = compat.sendzen_query(request.query, request.app[CURSORS])  # type: ignore[arg-type]
    except BadParameter:
        return web.json_response({"message": "Invalid request parameters", "data": None}, status=400)
    logs, after = await compat.sendzen_page(request.app[ENGINE], request[READER], query)  # type: ignore[arg-type]
    token = request.app[CURSORS].make("sendzen", after) if after else None  # type: ignore[attr-defined]
    body = (b'{"message": "Notification logs retrieved successfully", "data": {"logs": ['
            + ", ".join(logs).encode() + b'], "next_page_token": ' + jsoncodec.dumps(token).encode() + b"}}")
    return web.Response(body=body, content_type="application/json")


async def infobip_logs(request: web.Request) -> web.Response:
    try:
        query = compat.infobip_query(request.query, request.app[CURSORS])  # type: ignore[arg-type]
    except BadParameter as exc:
        return web.json_response({"errorCode": "E400", "description": f"Bad request: {exc}", "action": None,
                                  "violations": [], "resources": []}, status=400)
    results, after = await compat.infobip_page(request.app[ENGINE], request[READER], query)  # type: ignore[arg-type]
    tail = b""
    if query.use_cursor:
        cursor: dict[str, Any] = {"limit": query.limit}
        if after:
            cursor["nextCursor"] = request.app[CURSORS].make("infobip", after)  # type: ignore[attr-defined]
        tail = b', "cursor": ' + jsoncodec.dumps(cursor).encode()
    return web.Response(body=b'{"results": [' + ", ".join(results).encode() + b"]" + tail + b"}",
                        content_type="application/json")


async def list_messages(request: web.Request) -> web.Response:
    try:
        query = search.search_query(request.query, request.app[CURSORS])  # type: ignore[arg-type]
    except BadParameter as exc:
        return _bad(str(exc))
    found, after = await search.find_messages(request.app[ENGINE], request[READER], query)  # type: ignore[arg-type]
    cursor = request.app[CURSORS].make("messages", after) if after else None  # type: ignore[attr-defined]
    return web.json_response({"messages": found, "next_cursor": cursor})


async def show_message(request: web.Request) -> web.Response:
    source, message_id = request.match_info["source"], request.match_info["message_id"]
    if source not in search.SOURCES:
        return web.json_response({"error": "no such message"}, status=404)
    found = await search.message_detail(request.app[ENGINE], request[READER], source, message_id)  # type: ignore[arg-type]
    if found is None:
        return web.json_response({"error": "no such message"}, status=404)
    return web.json_response(found, dumps=jsoncodec.dumps)


async def erase_subject(request: web.Request) -> web.Response:
    reader: Reader = request[READER]
    if "erase" not in reader.permissions:
        return web.json_response({"error": "this token may not erase"}, status=403)
    eraser = request.app[ERASER]
    if eraser is None:
        return web.json_response({"error": "erasure is not available"}, status=503)
    try:
        phone = normalise(request.match_info["phone"])
    except ValueError:  # erase_phone would refuse it too, past the point of a clean 400
        return _bad("phone")
    counts = await eraser(phone)  # type: ignore[operator]
    log.warning("subject erased through the API", token=reader.name, rows=sum(counts.values()))
    return web.json_response({"erased": counts}, headers={"Cache-Control": "no-store"})


async def page(request: web.Request) -> web.Response:
    return web.Response(text=_asset("page.html"), content_type="text/html", headers=_page_headers())


async def login(request: web.Request) -> web.Response:
    """Trade a token typed into the page for an HttpOnly, SameSite=Strict cookie."""
    form = await request.post()
    token = str(form.get("token", ""))
    if request.app[TOKENS].reader(token) is None:  # type: ignore[attr-defined]
        return web.json_response({"error": "that token is not valid"}, status=401)
    response = web.json_response({"ok": True})
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                        secure=request.secure)
    return response


async def session(request: web.Request) -> web.Response:
    """Whether the page's cookie holds a valid token (200 either way: no console noise)."""
    reader = request.app[TOKENS].reader(request.cookies.get(COOKIE))  # type: ignore[attr-defined]
    return web.json_response({"signed_in": reader is not None}, headers={"Cache-Control": "no-store"})


async def logout(_request: web.Request) -> web.Response:
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


def _bad(parameter: str) -> web.Response:
    return web.json_response({"error": f"invalid parameter: {parameter}", "parameter": parameter}, status=400)


def _page_headers() -> dict[str, str]:
    return {"Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                                       "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'",
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _asset(name: str) -> str:
    return resources.files("archiver.api").joinpath(name).read_text(encoding="utf-8")
