"""RFC 9457 problem details: the one error shape every endpoint answers with."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:leadflow:problem:"


class FieldProblem(BaseModel):
    field: str = Field(description="The lead (or request) field at fault")
    code: str = Field(description="Stable machine-readable reason, e.g. invalid_phone, not_in_options")
    message: str
    source_field: str | None = Field(default=None, description="The incoming field it came from")


class Problem(BaseModel):
    """RFC 9457 problem details, with leadflow's extensions."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[f"{TYPE_PREFIX}validation-failed"])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str | None = Field(default=None, description="Specific reason, e.g. signature_invalid")
    submission_id: str | None = Field(default=None, description="The stored submission, when one was kept")
    errors: list[FieldProblem] | None = None


def problem_response(
    status: int, slug: str, title: str, detail: str | None = None, *, instance: str | None = None,
    headers: dict[str, str] | None = None, **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_PREFIX + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extensions.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries declaring the problem shape for each status."""
    described = {
        400: "Malformed body", 401: "Missing or invalid credentials or signature", 403: "Forbidden",
        404: "Not found", 409: "Conflict", 413: "Body too large", 415: "Unsupported media type",
        422: "Validation failed (field-level errors)", 429: "Rate limited (see Retry-After)",
        503: "A dependency is down; retry after Retry-After seconds",
    }
    return {s: {"model": Problem, "description": described.get(s, "Error"),
                "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            for s in statuses}
