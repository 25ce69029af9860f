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


def _add_logger_name(logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    if logger.name is not None:
        event["logger"] = logger.name
    return event


class _StderrLogger:
    """structlog's final logger: one rendered line to stderr.

    structlog events are rendered and written here directly, not through the standard library's logging
    (which cost a LogRecord, a caller lookup and a formatter per line: about a tenth of an intake request's
    CPU). `sys.stderr` is looked up per line, so redirecting it (tests, embedding) redirects these lines too.
    """

    __slots__ = ("name",)

    def __init__(self, name: str | None = None) -> None:
        self.name = name

    def msg(self, line: str) -> None:
        sys.stderr.write(line + "\n")  # stderr is line-buffered: one write, flushed

    debug = info = warning = error = critical = fatal = log = msg


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The standard library's lines (uvicorn, arq, sqlalchemy) go to the current `sys.stderr` as well."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    """structlog and the standard library (uvicorn, arq, sqlalchemy) rendered alike, masked, one line each."""
    renderer = (structlog.processors.JSONRenderer(serializer=dumps) if json
                else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_sensitive,
            renderer,
        ],
        logger_factory=_StderrLogger,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        cache_logger_on_first_use=True,
    )
    handler = _StderrHandler()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.stdlib.ExtraAdder(),
            mask_sensitive,
        ],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Outbound calls are logged by our own clients, with their masking; httpx would log full URLs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
