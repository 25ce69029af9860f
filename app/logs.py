"""R7.2: structured JSON logs with request / submission / lead ids; phones masked, secrets never written."""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any

import structlog

from app.domain.intake.phone import mask_phones
from app.fastjson import dumps

_SECRET_KEYS = ("secret", "token", "password", "authorization", "signature", "corpsecret", "access_token")
# Values we generate ourselves (ids, timings, levels): nothing to mask, and they are on every line.
_OWN_KEYS = frozenset({"timestamp", "level", "logger", "request_id", "submission_id", "lead_id", "intake", "status",
                       "duration_ms", "method", "job_id", "outbox_id"})


@functools.lru_cache(maxsize=4096)
def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_KEYS)


def _mask(value: Any, key: str = "") -> Any:
    if _is_secret_key(key):
        return "***"
    if isinstance(value, str):
        return mask_phones(value)
    if isinstance(value, dict):
        return {k: _mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    return value


def mask_sensitive(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: every string value has its phone numbers masked; secret-named keys hidden."""
    return {k: v if k in _OWN_KEYS else _mask(v, k) for k, v in event.items()}


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    """Route structlog and the standard library (uvicorn, arq, sqlalchemy) through one masked renderer."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        mask_sensitive,
    ]
    renderer = (structlog.processors.JSONRenderer(serializer=dumps) if json
                else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[*shared[:-1], structlog.stdlib.ExtraAdder(), mask_sensitive],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Outbound calls are logged by our own clients, with their masking; httpx would log full URLs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
