"""R1.1: create, change, find and bulk-load sources."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.clock import Clock
from app.domain.errors import Conflict, FieldError, InvalidInput, NotFound
from app.domain.sources.models import Source
from app.domain.sources.schemas import SourceAuth, SourceAuthOut, SourceIn, SourceOut, SourcePatch, default_auth


def _auth_settings(auth: SourceAuth) -> dict[str, Any]:
    data = auth.model_dump(exclude={"mode", "secret"})
    if auth.secret is not None:
        data["secret"] = auth.secret.get_secret_value()
    return data


def to_out(source: Source) -> SourceOut:
    """The public view of a source: the secret is reported as set or not, never shown."""
    s = source.auth_settings
    return SourceOut(
        id=source.id, key=source.key, name=source.name, kind=source.kind, enabled=source.enabled,
        intake_path=f"/v1/intake/{source.key}", field_mapping=source.field_mapping, options=source.options,
        native_id_field=source.native_id_field,
        auth=SourceAuthOut(
            mode=source.auth_mode, hmac_scheme=s.get("hmac_scheme") if source.auth_mode == "hmac" else None,
            secret_set=bool(s.get("secret")), allowed_origins=s.get("allowed_origins", []),
            rate_limit_per_minute=s.get("rate_limit_per_minute"), honeypot_field=s.get("honeypot_field")),
        description=source.description, created_at=source.created_at, updated_at=source.updated_at,
    )


async def find_source(session: AsyncSession, key: str) -> Source | None:
    return await session.scalar(select(Source).where(Source.key == key))


async def get_source(session: AsyncSession, key: str) -> Source:
    source = await find_source(session, key)
    if source is None:
        raise NotFound(f"no source with key {key!r}")
    return source


async def list_sources(session: AsyncSession) -> list[Source]:
    return list(await session.scalars(select(Source).order_by(Source.created_at)))


async def create_source(session: AsyncSession, data: SourceIn, clock: Clock) -> Source:
    """Create a source; a key is generated when none is given. A taken key is a Conflict."""
    auth = data.auth or default_auth(data.kind)
    if auth is None:
        raise InvalidInput(f"a {data.kind} source needs an auth setting",
                           [FieldError("auth", "required", f"{data.kind} sources must say how they authenticate")])
    key = data.key or secrets.token_urlsafe(9).lower().replace("_", "x").replace("-", "x")
    if await find_source(session, key) is not None:
        raise Conflict(f"source key {key!r} is taken")
    now = clock.now()
    source = Source(
        key=key, name=data.name, kind=data.kind, enabled=data.enabled, field_mapping=data.field_mapping,
        options=data.options, native_id_field=data.native_id_field, auth_mode=auth.mode,
        auth_settings=_auth_settings(auth), description=data.description, created_at=now, updated_at=now,
    )
    session.add(source)
    await session.flush()
    return source


async def update_source(session: AsyncSession, key: str, patch: SourcePatch, clock: Clock) -> Source:
    """Change a source; fields left out stay as they are. A new auth keeps the old secret if none is given."""
    source = await session.scalar(select(Source).where(Source.key == key).with_for_update())
    if source is None:
        raise NotFound(f"no source with key {key!r}")
    changes = patch.model_dump(exclude_unset=True, exclude={"auth"})
    for name, value in changes.items():
        setattr(source, name, value)
    if patch.auth is not None:
        settings = _auth_settings(patch.auth)
        if "secret" not in settings and source.auth_settings.get("secret") and patch.auth.mode == "hmac":
            settings["secret"] = source.auth_settings["secret"]
        source.auth_mode, source.auth_settings = patch.auth.mode, settings
    source.updated_at = clock.now()
    await session.flush()
    return source


def parse_sources_file(path: Path) -> list[SourceIn]:
    """Read a YAML list of sources (`sources: [...]`); every entry must name its key."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise InvalidInput(f"{path} cannot be read", [FieldError("file", "unreadable", str(error)[:300])]) from None
    entries = (document.get("sources") if isinstance(document, dict) else document) or []  # `sources:` alone
    if not isinstance(entries, list):
        raise InvalidInput(f"{path} has invalid sources", [FieldError("sources", "not_a_list",
                                                                      "sources must be a YAML list")])
    parsed: list[SourceIn] = []
    errors: list[FieldError] = []
    for index, entry in enumerate(entries):
        try:
            item = SourceIn.model_validate(entry)
        except ValidationError as error:
            errors += [FieldError(f"sources[{index}]." + ".".join(map(str, e["loc"])), e["type"], e["msg"])
                       for e in error.errors()]
            continue
        if item.key is None:
            errors.append(FieldError(f"sources[{index}].key", "required", "sources in a file need a key"))
        parsed.append(item)
    if errors:
        raise InvalidInput(f"{path} has invalid sources", errors)
    return parsed


async def load_sources(session: AsyncSession, items: list[SourceIn], clock: Clock) -> list[Source]:
    """Upsert sources by key: new keys are created, existing ones take the file's settings."""
    loaded = []
    for item in items:
        assert item.key is not None
        if await find_source(session, item.key) is None:
            loaded.append(await create_source(session, item, clock))
        else:
            patch = SourcePatch.model_validate(item.model_dump(exclude={"key", "kind"}, exclude_unset=True))
            loaded.append(await update_source(session, item.key, patch, clock))
    return loaded
