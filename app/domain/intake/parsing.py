"""Turn a raw body into a field dict: JSON objects and form-encoded bodies."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

FORM_TYPES = ("application/x-www-form-urlencoded",)


class BodyError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def parse_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    """JSON (an object) or urlencoded form; anything else is a BodyError with a stable code.

    A form field sent several times keeps its last value (what browsers' FormData.set would send).
    """
    media = (content_type or "").split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BodyError("invalid_encoding", "body is not UTF-8") from error
    if media in FORM_TYPES:
        return without_nul(dict(parse_qsl(text, keep_blank_values=True)))
    if media == "application/json" or media.endswith("+json") or not media:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise BodyError("malformed_json", f"body is not valid JSON: {error.msg} at line {error.lineno} "
                            f"column {error.colno}") from error
        if not isinstance(data, dict):
            raise BodyError("not_an_object", "the JSON body must be an object")
        return without_nul(data)
    raise BodyError("unsupported_media_type",
                    f"content type {media!r} is not accepted; send application/json or "
                    "application/x-www-form-urlencoded")


def without_nul(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL characters: drop them from keys and strings (the raw body keeps them)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value
