"""JSON text, fast: orjson, with the standard library for what orjson refuses (integers beyond 64 bits).

Used on the per-request paths (intake answers and arguments, log lines); output is UTF-8 JSON, non-ASCII
kept as is, like json.dumps(ensure_ascii=False).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps_bytes(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    try:
        return orjson.dumps(value, default=default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, default=default).encode()


def dumps(value: Any, default: Callable[[Any], Any] | None = None, **_ignored: Any) -> str:
    return dumps_bytes(value, default).decode()
