"""CORS preflight for browser sources: answer only origins on the source's allowlist."""

from __future__ import annotations

from app.domain.errors import Forbidden
from app.domain.intake.service import IntakeContext
from app.domain.intake.source_auth import check_origin


async def check_preflight(ctx: IntakeContext, source_key: str, origin: str | None) -> str | None:
    """The origin to allow, or Forbidden. Non-browser sources allow no cross-origin browser posts."""
    source = await ctx.sources.get(source_key)
    if source.auth_mode != "browser":
        raise Forbidden("this source does not take browser posts", extra={"code": "not_a_browser_source"})
    failure = check_origin(origin, source.auth_settings.get("allowed_origins", []))
    if failure is not None:
        raise Forbidden(failure.message, extra={"code": failure.code})
    return origin or "*"
