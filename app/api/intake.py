"""POST /v1/intake/{source_key}: the public webhook every form channel posts to.

The route below declares the contract (OpenAPI) and serves the request when it reaches FastAPI's router.
In the running service `intake_fast_path` answers it first (`LeadflowAPI.__call__`, app/main.py), with the
same `serve_intake`, without Starlette's middleware stack, FastAPI's per-request routing, dependency solving
and exception middleware (about a third of the CPU an intake request cost); errors are rendered by the same
functions as the app's exception handlers.
"""

from __future__ import annotations

import functools
import time
import uuid
from typing import Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.types import Receive, Scope, Send

from app.api.deps import get_intake_context, intake_context
from app.api.errors import (
    DATABASE_ERRORS,
    database_error_response,
    domain_error_response,
    unexpected_error_response,
)
from app.api.problems import problem_responses
from app.domain.errors import DomainError, NotFound
from app.domain.intake.preflight import check_preflight
from app.domain.intake.schemas import IncomingRequest, IntakeResult
from app.domain.intake.service import IntakeContext, receive_submission
from app.fastjson import dumps_bytes
from app.metrics import INTAKE_LATENCY, INTAKE_REQUESTS

router = APIRouter(tags=["intake"])


class IntakeAccepted(BaseModel):
    lead_id: str = Field(description="Human-readable lead number to quote to support",
                         examples=["LD-20261124-000123"])
    submission_id: uuid.UUID
    status: Literal["accepted", "duplicate", "merged"] = Field(
        description="accepted: new lead; duplicate: same submission seen before (original lead id); "
                    "merged: added as an inquiry to an open lead with the same phone")


class DouyinAck(IntakeAccepted):
    """Ocean Engine expects {code: 0, message: "success"}; our ids ride along."""

    code: int = 0
    message: str = "success"


_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "The channel's own payload. Douyin sources take the Ocean Engine lead push.",
        "content": {
            "application/json": {"schema": {"type": "object", "additionalProperties": True}},
            "application/x-www-form-urlencoded": {"schema": {"type": "object", "additionalProperties": True}},
        },
    },
    "parameters": [
        {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"},
         "description": "Same key again → the original lead id, nothing new is created"},
        {"name": "X-Leadflow-Timestamp", "in": "header", "required": False, "schema": {"type": "string"},
         "description": "hmac sources: Unix seconds"},
        {"name": "X-Leadflow-Signature", "in": "header", "required": False, "schema": {"type": "string"},
         "description": "hmac sources: sha256=hex(HMAC-SHA256(secret, timestamp + '.' + body))"},
    ],
}


async def read_limited_body(request: Request, limit: int) -> tuple[bytes, bool]:
    """Read at most `limit` bytes; the flag says the body was longer (and was cut)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            chunks.append(chunk[: max(0, limit - (size - len(chunk)))])
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


def client_address(request: Request, trust_forwarded_for: bool) -> str | None:
    """Behind our proxy, the last X-Forwarded-For entry is the one it added (earlier ones are client-written)."""
    if trust_forwarded_for and (forwarded := request.headers.get("x-forwarded-for")):
        return forwarded.split(",")[-1].strip()[:64]
    return request.client.host if request.client else None


def _cors_headers(origin: str | None) -> dict[str, str]:
    if not origin:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
            "Access-Control-Expose-Headers": "Retry-After"}


@router.post(
    "/v1/intake/{source_key}",
    summary="Submit a lead from a form channel",
    status_code=201,
    response_model=IntakeAccepted,
    responses={200: {"model": IntakeAccepted | DouyinAck,
                     "description": "duplicate or merged; douyin sources always answer 200 in their shape"},
               **problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503)},
    openapi_extra=_BODY_DOC,
)
async def submit_lead(
    source_key: str, request: Request, ctx: IntakeContext = Depends(get_intake_context)
) -> Response:
    return await serve_intake(ctx, source_key, request)


INTAKE_PREFIX = "/v1/intake/"


def is_intake_post(scope: Scope) -> bool:
    """`POST /v1/intake/{source_key}`: what the fast path answers."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    path: str = scope["path"]
    return path.startswith(INTAKE_PREFIX) and len(path) > len(INTAKE_PREFIX) and "/" not in path[len(INTAKE_PREFIX):]


async def intake_fast_path(scope: Scope, receive: Receive, send: Send) -> None:
    """The intake route as a bare ASGI app (see the module docstring); `scope["app"]` is the leadflow app.

    Errors are answered exactly as the app's exception handlers answer them on the routed path.
    """
    request = Request(scope, receive)
    try:
        response = await serve_intake(intake_context(scope["app"].state), scope["path"][len(INTAKE_PREFIX):],
                                      request)
    except DomainError as error:
        response = domain_error_response(request, error)
    except DATABASE_ERRORS as error:
        response = await database_error_response(request, error)
    except Exception as error:
        response = await unexpected_error_response(request, error)
    await response(scope, receive, send)


async def serve_intake(ctx: IntakeContext, source_key: str, request: Request) -> Response:
    started = time.perf_counter()
    body, truncated = await read_limited_body(request, ctx.settings.max_body_bytes)
    incoming = IncomingRequest(
        source_key=source_key, body=body, body_truncated=truncated,
        content_type=(request.headers.get("content-type") or "")[:200] or None,
        headers={k.lower(): v for k, v in request.headers.items()},
        remote_addr=client_address(request, ctx.settings.trust_forwarded_for),
    )
    origin = request.headers.get("origin")
    try:
        result = await receive_submission(ctx, incoming)
    except DomainError as error:
        metric_source = "unknown" if isinstance(error, NotFound) else source_key  # no series per random key
        _requests(metric_source, "refused_" + error.code).inc()
        _latency(metric_source).observe(time.perf_counter() - started)
        error.headers = _cors_headers(origin)  # type: ignore[attr-defined]  # browsers must read the problem
        raise
    _latency(source_key).observe(time.perf_counter() - started)
    _requests(source_key, result.status).inc()
    return _answer(result, origin)


# The labelled series, looked up once (prometheus_client's .labels() takes a lock and builds a key per call).
_requests = functools.lru_cache(maxsize=1024)(INTAKE_REQUESTS.labels)
_latency = functools.lru_cache(maxsize=1024)(INTAKE_LATENCY.labels)


def _answer(result: IntakeResult, origin: str | None) -> Response:
    body = {"lead_id": result.lead_number, "submission_id": str(result.submission_id), "status": result.status}
    if result.source_kind == "douyin":
        return Response(dumps_bytes({"code": 0, "message": "success", **body}), media_type="application/json")
    status = 201 if result.status == "accepted" else 200
    return Response(dumps_bytes(body), status_code=status, media_type="application/json",
                    headers=_cors_headers(origin))


@router.options("/v1/intake/{source_key}", summary="CORS preflight for browser sources", status_code=204,
                responses=problem_responses(403, 404, 503))
async def preflight(source_key: str, request: Request, ctx: IntakeContext = Depends(get_intake_context)) -> Response:
    origin = request.headers.get("origin")
    allowed = await check_preflight(ctx, source_key, origin)
    return Response(status_code=204, headers={
        **_cors_headers(allowed), "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, Idempotency-Key", "Access-Control-Max-Age": "600"})
