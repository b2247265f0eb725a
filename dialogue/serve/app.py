"""The ASGI app: FastAPI routes over `Service`, JSON errors, auth, limits, metrics."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ..engine import Engine
from ..errors import DialogueError
from .auth import RateLimiter, Tokens
from .errors import ApiError, error_body, from_dialogue_error
from .limits import BodyLimit
from .metrics import CONTENT_TYPE, Metrics
from .models import (ErrorOut, Health, PolicyList, PolicyOut, Ready, SessionCreate, SessionOut, TurnList, TurnOut,
                     TurnRequest)
from .service import Service, policy_view, session_view, turn_view

__all__ = ["make_app"]

log = logging.getLogger("dialogue.serve")
API = "/v1"
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (400, 401, 404, 409, 413, 415, 422,
                                                                                     429, 500, 503)}
_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type"}


def make_app(policies: Engine | Iterable[Engine] | Mapping[str, Engine], *, tokens: Mapping[str, str] | None = None,
             cors: Iterable[str] = (), max_body_bytes: int = 64 * 1024, rate_limit: float | None = 100.0,
             burst: float | None = None, warm: bool = True, close_engines: bool = False) -> FastAPI:
    """The HTTP API over these engines (one per policy, served by its policy name).

    `tokens` ({token: name}) requires `Authorization: Bearer TOKEN` on the /v1 routes and
    /metrics; None serves without auth (the embedding server's own auth, or loopback).
    `rate_limit` is requests a second per token name (None: no limit); `cors` the origins a
    browser client may call from. `warm` loads every policy's matcher and model at startup
    (/readyz says when); `close_engines` closes them at shutdown.
    """
    service = Service(_by_name(policies))
    app = FastAPI(title="dialogue", version="1", lifespan=_lifespan(service, warm, close_engines),
                  strict_content_type=False, docs_url=None, redoc_url=None,
                  description="Constrained-response dialogue: every reply is an approved catalog line.")
    app.state.service = service
    authorized = _authorization(Tokens(dict(tokens)) if tokens is not None else None,
                                RateLimiter(rate_limit, burst) if rate_limit else None, service.metrics)
    _errors(app, service.metrics)
    _routes(app, service, authorized)
    _docs(app)
    if cors := list(cors):
        app.add_middleware(CORSMiddleware, allow_origins=cors, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
                           expose_headers=["Retry-After", "Idempotency-Replayed"])
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app


def _docs(app: FastAPI) -> None:
    """The interactive docs at /docs, with Swagger UI's files served from the installed
    `swagger-ui-bundle-v2` package (part of the serve extra), so the page works offline."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from starlette.staticfiles import StaticFiles

    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # installed without the serve extra's docs files: the schema alone
        log.info("swagger-ui-bundle-v2 is not installed: /docs is off; /openapi.json is served")
        return
    app.mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title="dialogue: HTTP API",
                                   swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/assets/swagger-ui.css",
                                   swagger_favicon_url="/docs/assets/favicon-32x32.png")


def _by_name(policies: Engine | Iterable[Engine] | Mapping[str, Engine]) -> dict[str, Engine]:
    if isinstance(policies, Engine):
        policies = [policies]
    if isinstance(policies, Mapping):
        return dict(policies)
    engines: dict[str, Engine] = {}
    for engine in policies:
        if engine.policy.name in engines:
            raise ValueError(f"two engines serve policy {engine.policy.name!r}; serve each policy once")
        engines[engine.policy.name] = engine
    if not engines:
        raise ValueError("make_app needs at least one engine")
    return engines


def _lifespan(service: Service, warm: bool, close_engines: bool):
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if warm:
            threading.Thread(target=service.warm, name="dialogue-warm", daemon=True).start()
        else:
            service.readiness.update({name: "ready" for name in service.engines})
        yield
        if close_engines:
            service.close()
    return lifespan


def _authorization(tokens: Tokens | None, limiter: RateLimiter | None, metrics: Metrics):
    bearer = HTTPBearer(auto_error=False, description="a token from the server's --token-file")

    async def authorized(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str | None:
        """The token's name (None without auth), after the rate limit took one request."""
        name = None
        if tokens is not None:
            header = f"Bearer {credentials.credentials}" if credentials else request.headers.get("authorization")
            name = tokens.name_of(header)
        if limiter is not None:
            limiter.take(name or (request.client.host if request.client else "anonymous"))
        return name
    return authorized


# -- errors: JSON with a stable code, never a traceback ----------------------------------------

def _errors(app: FastAPI, metrics: Metrics) -> None:
    def respond(error: ApiError) -> JSONResponse:
        metrics.add("dialogue_errors_total", code=error.code)
        return JSONResponse(error_body(error), status_code=error.status, headers=error.headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return respond(exc)

    @app.exception_handler(DialogueError)
    async def dialogue_error(request: Request, exc: DialogueError) -> JSONResponse:
        error = from_dialogue_error(exc)
        if error.status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return respond(error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return respond(_invalid(exc.errors(), request.headers.get("content-type")))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if isinstance(exc.detail, ApiError):
            return respond(exc.detail)
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}; see /openapi.json"
        return respond(ApiError(exc.status_code, code, message, dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return respond(ApiError(500, "internal_error", "the server failed on this request; its log has the details"))


def _invalid(errors: list[dict], content_type: str | None) -> ApiError:
    if content_type and "json" not in content_type.lower() and any(e.get("loc") == ("body",) for e in errors):
        return ApiError(415, "unsupported_media_type", f"the body is {content_type.split(';')[0]}; send JSON "
                        "with Content-Type: application/json")
    if any(e.get("type") == "json_invalid" for e in errors):
        first = next(e for e in errors if e.get("type") == "json_invalid")
        where = (first.get("ctx") or {}).get("error", "")
        return ApiError(400, "invalid_json", f"the body is not valid JSON{f' ({where})' if where else ''}")
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    return ApiError(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")


# -- routes ------------------------------------------------------------------------------------

def _routes(app: FastAPI, service: Service, authorized) -> None:
    _operations(app, service)
    _policy_routes(app, service, authorized)
    _session_routes(app, service, authorized)
    _turn_routes(app, service, authorized)


def _operations(app: FastAPI, service: Service) -> None:
    @app.get("/healthz", response_model=Health, tags=["operations"])
    async def healthz() -> dict:
        """The process is up (it may still be loading: see /readyz)."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=Ready, responses={503: {"model": Ready}}, tags=["operations"])
    async def readyz() -> JSONResponse:
        """Every policy's matcher and model are loaded: the first turn will not wait for them."""
        body = {"ready": service.ready, "policies": dict(service.readiness)}
        return JSONResponse(body, status_code=200 if body["ready"] else 503)


def _policy_routes(app: FastAPI, service: Service, authorized) -> None:
    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"], responses=ERRORS)
    async def metrics(client: str | None = Depends(authorized)) -> PlainTextResponse:
        """Prometheus text: turns, fallbacks, latency per policy and stage, turns in flight, errors."""
        return PlainTextResponse(service.metrics.render(), media_type=CONTENT_TYPE)

    @app.get(f"{API}/policies", response_model=PolicyList, responses=ERRORS, tags=["policies"])
    async def list_policies(client: str | None = Depends(authorized)) -> dict:
        return {"policies": [policy_view(e) for _, e in sorted(service.engines.items())]}

    @app.get(API + "/policies/{policy}", response_model=PolicyOut, responses=ERRORS, tags=["policies"])
    async def get_policy(policy: str, client: str | None = Depends(authorized)) -> dict:
        """A policy's nodes and its catalog's version and hash."""
        return policy_view(service.engine(policy))


def _session_routes(app: FastAPI, service: Service, authorized) -> None:
    @app.post(API + "/policies/{policy}/sessions", response_model=SessionOut, status_code=201,
              responses=ERRORS | {200: {"model": SessionOut, "description": "the existing session of that id"}},
              tags=["sessions"])
    async def create_session(policy: str, response: Response, body: SessionCreate | None = None,
                             client: str | None = Depends(authorized)) -> dict:
        """A new session (201), or the existing one when only its id is given (200)."""
        body = body or SessionCreate()
        session, created = await run_in_threadpool(service.create, policy, body.id, body.state, body.node,
                                                    body.locale)
        response.status_code = 201 if created else 200
        return session_view(session, service.closed(session))

    @app.get(API + "/sessions/{session_id}", response_model=SessionOut, responses=ERRORS, tags=["sessions"])
    async def get_session(session_id: str, client: str | None = Depends(authorized)) -> dict:
        """A session's state, node and history."""
        session = await run_in_threadpool(service.session, session_id)
        return session_view(session, service.closed(session))

    @app.delete(API + "/sessions/{session_id}", response_model=SessionOut, responses=ERRORS, tags=["sessions"])
    async def end_session(session_id: str, client: str | None = Depends(authorized)) -> dict:
        """End a session: later turns get 409 session_ended; its turns stay on record."""
        return session_view(await run_in_threadpool(service.end, session_id, client), True)


def _turn_routes(app: FastAPI, service: Service, authorized) -> None:
    @app.post(API + "/sessions/{session_id}/turns", response_model=TurnOut, responses=ERRORS, tags=["turns"])
    async def take_turn(session_id: str, body: TurnRequest, response: Response, trace: bool = False,
                        idempotency_key: str | None = Header(None, max_length=200, description=(
                            "a retried request with the same key gets the turn it took, not a second turn")),
                        client: str | None = Depends(authorized)) -> dict:
        """One turn: the person's message in, the reply out (`?trace=1` adds how it was chosen)."""
        started = time.perf_counter()
        turn, replayed = await run_in_threadpool(service.turn, session_id, body.message, client, idempotency_key)
        if replayed:
            response.headers["Idempotency-Replayed"] = "true"
        else:
            service.metrics.observe(time.perf_counter() - started, policy=service.policy_of(session_id),
                                    stage="request")
        return turn_view(turn, trace)

    @app.get(API + "/sessions/{session_id}/turns", response_model=TurnList, responses=ERRORS, tags=["turns"])
    async def list_turns(session_id: str, trace: bool = False, client: str | None = Depends(authorized)) -> dict:
        session = await run_in_threadpool(service.session, session_id)
        return {"session_id": session.id, "turns": [turn_view(t, trace) for t in list(session.turns)]}
