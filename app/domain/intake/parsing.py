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
            data = json.loads(text, parse_constant=_not_json)
        except json.JSONDecodeError as error:
            raise BodyError("malformed_json", f"body is not valid JSON: {error.msg} at line {error.lineno} "
                            f"column {error.colno}") from error
        except RecursionError as error:
            raise BodyError("too_deep", f"the JSON nests deeper than {MAX_DEPTH} levels") from error
        except ValueError as error:  # NaN / Infinity, or an integer of thousands of digits
            raise BodyError("malformed_json", f"body is not valid JSON: {str(error)[:120]}") from error
        if not isinstance(data, dict):
            raise BodyError("not_an_object", "the JSON body must be an object")
        return without_nul(data)
    raise BodyError("unsupported_media_type",
                    f"content type {media!r} is not accepted; send application/json or "
                    "application/x-www-form-urlencoded")


MAX_DEPTH = 32  # no form nests this deep; a body that does is refused, not walked into a RecursionError


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def without_nul(value: Any, depth: int = 0) -> Any:
    """Strings PostgreSQL can store: NUL characters dropped, lone UTF-16 surrogates (an emoji cut in half
    by a form's maxlength, sent as "\\ud83d") replaced by "?". The raw body keeps the original bytes."""
    if isinstance(value, str):
        return _storable(value)
    if depth > MAX_DEPTH:
        raise BodyError("too_deep", f"the JSON nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        return {_storable(str(k)): without_nul(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v, depth + 1) for v in value]
    return value


def _storable(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return text.encode("utf-8", "replace").decode("utf-8")
    return text
