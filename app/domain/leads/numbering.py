"""R1.2: human-readable lead numbers a visitor can screenshot and quote: PREFIX-YYYYMMDD-NNNNNN."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.leads.models import lead_number_seq


def format_lead_number(prefix: str, at: datetime, number: int, tz: ZoneInfo) -> str:
    """The date is the business-timezone date of `at`; the number is zero-padded to at least six digits."""
    return f"{prefix}-{at.astimezone(tz):%Y%m%d}-{number:06d}"


async def next_lead_number(session: AsyncSession, prefix: str, at: datetime, tz: ZoneInfo) -> str:
    """Unique forever (one database sequence): never waits on another transaction, may leave gaps."""
    number = await session.scalar(select(lead_number_seq.next_value()))
    return format_lead_number(prefix, at, int(number), tz)
