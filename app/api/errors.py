"""Domain errors → HTTP problem details. The only place that knows both."""

from __future__ import annotations

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.problems import problem_response
from app.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    MalformedBody,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    Unavailable,
)

log = structlog.get_logger(__name__)

STATUS = {NotFound: 404, Conflict: 409, Forbidden: 403, Unauthorized: 401, InvalidInput: 422,
          MalformedBody: 400, PayloadTooLarge: 413, RateLimited: 429, Unavailable: 503}


def status_for(error: DomainError) -> int:
    if isinstance(error, MalformedBody) and error.extra.get("code") == "unsupported_media_type":
        return 415
    return next((code for cls, code in STATUS.items() if isinstance(error, cls)), 500)


def domain_error_response(request: Request, error: DomainError):
    status = status_for(error)
    headers: dict[str, str] = dict(getattr(error, "headers", {}) or {})
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, Unavailable):
        headers["Retry-After"] = str(request.app.state.settings.retry_after_seconds)
        log.warning("dependency_unavailable", dependency=error.dependency, detail=error.detail)
        # the public answer names the dependency, never hosts, ports or driver messages
        return problem_response(503, error.code, error.title, f"{error.dependency} unavailable; retry later",
                                instance=request.url.path, headers=headers, code="dependency_unavailable",
                                dependency=error.dependency)
    # RFC 9457's own members cannot be overridden by an extension
    extra = {k: v for k, v in error.extra.items() if k not in ("type", "title", "status", "detail", "instance")}
    errors = [e.as_dict() for e in error.errors] if isinstance(error, InvalidInput) else None
    return problem_response(status, error.code, error.title, error.detail, instance=request.url.path,
                            headers=headers, errors=errors, **extra)


DATABASE_ERRORS = (exc.DBAPIError, asyncpg.PostgresError)


async def database_error_response(request: Request, error: Exception):
    from app.db import is_data_error, is_database_unavailable

    if is_database_unavailable(error):
        return domain_error_response(request, Unavailable("database", type(error).__name__))
    if is_data_error(error):  # a value PostgreSQL cannot store: NUL characters, numbers out of range
        return problem_response(422, "validation-failed", "Input failed validation",
                                "a value cannot be stored (NUL character, or a number out of range)",
                                instance=request.url.path, code="unstorable_value")
    log.exception("database_error", path=request.url.path)
    return problem_response(500, "internal-error", "Internal server error",
                            "an unexpected error; it has been logged", instance=request.url.path)


async def unexpected_error_response(request: Request, error: Exception):
    from app.db import is_database_unavailable

    if is_database_unavailable(error):
        return domain_error_response(request, Unavailable("database", type(error).__name__))
    log.exception("unhandled_error", path=request.url.path)
    return problem_response(500, "internal-error", "Internal server error",
                            "an unexpected error; it has been logged", instance=request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, error: DomainError):
        return domain_error_response(request, error)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError):
        errors = [{"field": ".".join(str(p) for p in e["loc"] if p != "body") or "body", "code": e["type"],
                   "message": e["msg"]} for e in error.errors()]
        return problem_response(422, "validation-failed", "Input failed validation",
                                f"{len(errors)} field(s) failed validation", instance=request.url.path,
                                errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException):
        slug = {404: "not-found", 405: "method-not-allowed"}.get(error.status_code, "http-error")
        return problem_response(error.status_code, slug, str(error.detail), instance=request.url.path,
                                headers=getattr(error, "headers", None))

    # handled here (not by the catch-all below, which Starlette re-raises after answering)
    app.add_exception_handler(exc.DBAPIError, database_error_response)
    app.add_exception_handler(asyncpg.PostgresError, database_error_response)

    app.add_exception_handler(Exception, unexpected_error_response)
