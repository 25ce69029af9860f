"""Domain errors. `app/api/errors.py` alone turns them into HTTP problem details."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class FieldError:
    field: str
    code: str
    message: str
    source_field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "code": self.code, "message": self.message}
        if self.source_field is not None:
            out["source_field"] = self.source_field
        return out


class DomainError(Exception):
    """Base of every error a caller can be told about. `code` is a stable slug for clients."""

    code = "error"
    title = "Error"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None, keep_changes: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}
        # A refusal that must still be recorded (R2.7: failed actions are audited): the unit of work commits
        # what was written before the error, then the error reaches the caller.
        self.keep_changes = keep_changes


class NotFound(DomainError):
    code, title = "not-found", "Not found"


class Conflict(DomainError):
    code, title = "conflict", "Conflict"


class Forbidden(DomainError):
    code, title = "forbidden", "Forbidden"


class Unauthorized(DomainError):
    code, title = "unauthorized", "Unauthorized"


class InvalidInput(DomainError):
    code, title = "validation-failed", "Input failed validation"

    def __init__(self, detail: str, errors: list[FieldError], *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail, extra=extra)
        self.errors = errors


class MalformedBody(DomainError):
    code, title = "malformed-body", "Malformed request body"


class PayloadTooLarge(DomainError):
    code, title = "payload-too-large", "Request body too large"


class RateLimited(DomainError):
    code, title = "rate-limited", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail, extra=extra)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A dependency (database, queue) cannot be reached now; the caller should retry."""

    code, title = "dependency-unavailable", "Service temporarily unavailable"

    def __init__(self, dependency: str, detail: str = "") -> None:
        super().__init__(f"{dependency} unavailable" + (f": {detail}" if detail else ""))
        self.dependency = dependency
