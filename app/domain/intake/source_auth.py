"""R1.11: who may post to a source — signed servers, or browsers from allowed origins at a sane rate."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

TIMESTAMP_HEADER = "x-leadflow-timestamp"
SIGNATURE_HEADER = "x-leadflow-signature"
OCEAN_ENGINE_HEADER = "x-open-signature"
HMAC_SCHEMES = ("leadflow", "ocean_engine")


@dataclass
class AuthFailure:
    """Why a request was refused; `status_hint` tells the API which problem to answer with."""

    code: str
    message: str
    kind: str  # "unauthorized" | "forbidden"


def sign_leadflow(secret: str, timestamp: int | str, body: bytes) -> str:
    """The `X-Leadflow-Signature` value a sender must put on a request: sha256=hex(HMAC(ts + "." + body))."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def sign_ocean_engine(secret: str, body: bytes) -> str:
    """Ocean Engine's subscription push: `X-Open-Signature` = hex(HMAC-SHA256(secret, raw body))."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(
    *, scheme: str, secret: str, headers: dict[str, str], body: bytes, now: datetime, tolerance_s: int
) -> tuple[str | None, AuthFailure | None]:
    """Check a server-to-server signature. Returns (signature to remember against replay, None) or a failure.

    Constant-time comparison; the timestamp must lie within ±tolerance of our clock.
    """
    if scheme == "ocean_engine":
        given = headers.get(OCEAN_ENGINE_HEADER, "").strip().lower()
        if not given:
            return None, AuthFailure("signature_missing", f"{OCEAN_ENGINE_HEADER} header is required",
                                     "unauthorized")
        if not hmac.compare_digest(given.encode(), sign_ocean_engine(secret, body).encode()):  # bytes: any header
            return None, AuthFailure("signature_invalid", "signature does not match the body", "unauthorized")
        return None, None  # no timestamp in this scheme: replays are caught by the clue id instead
    raw_ts = headers.get(TIMESTAMP_HEADER, "").strip()
    given = headers.get(SIGNATURE_HEADER, "").strip()
    if not raw_ts or not given:
        return None, AuthFailure(
            "signature_missing", f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers are required",
            "unauthorized")
    if not (raw_ts.isascii() and raw_ts.isdigit() and len(raw_ts) <= 12):
        return None, AuthFailure("timestamp_invalid", "timestamp must be Unix seconds", "unauthorized")
    timestamp = int(raw_ts)
    skew = abs(now.timestamp() - timestamp)
    if skew > tolerance_s:
        return None, AuthFailure(
            "timestamp_out_of_tolerance",
            f"timestamp is {int(skew)} s away from server time (tolerance {tolerance_s} s)", "unauthorized")
    if not hmac.compare_digest(given.lower().encode(), sign_leadflow(secret, timestamp, body).encode()):
        return None, AuthFailure("signature_invalid", "signature does not match timestamp and body",
                                 "unauthorized")
    return given.lower().removeprefix("sha256="), None


def check_origin(origin: str | None, allowed: list[str]) -> AuthFailure | None:
    """Browser sources: the Origin header must be on the source's allowlist ("*" allows any)."""
    if "*" in allowed:
        return None
    if not origin:
        return AuthFailure("origin_missing", "browser sources need an Origin header", "forbidden")
    if origin.rstrip("/") not in {a.rstrip("/") for a in allowed}:
        return AuthFailure("origin_not_allowed", f"origin {origin} is not allowed for this source", "forbidden")
    return None


async def take_rate_limit_slot(redis: Redis, *, scope: str, client: str, limit: int) -> int | None:
    """Fixed one-minute window per (source, client). Returns seconds to wait when over, else None.

    Redis down → the limit is not enforced (logged): refusing real visitors would lose leads.
    """
    window = int(time.time() // 60)
    key = f"leadflow:rl:{scope}:{client}:{window}"
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 61)
            count, _ = await pipe.execute()
    except (RedisError, OSError) as error:
        log.warning("rate_limit_unenforced", reason="redis_unavailable", error=str(error))
        return None
    if count > limit:
        return max(1, 60 - int(time.time()) % 60)
    return None
