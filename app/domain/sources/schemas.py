"""Source configuration as the API and the YAML file speak it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from app.domain.patching import not_null

SourceKind = Literal["wechat_h5", "douyin", "qr_offline", "generic"]
AuthMode = Literal["none", "hmac", "browser"]
HmacScheme = Literal["leadflow", "ocean_engine"]
KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,63}$"


class SourceAuth(BaseModel):
    """How a source proves its requests (R1.11). `secret` is write-only: it is never shown again."""

    model_config = ConfigDict(extra="forbid")

    mode: AuthMode
    hmac_scheme: HmacScheme = "leadflow"
    secret: SecretStr | None = Field(default=None, description="HMAC secret (write-only)")
    allowed_origins: list[str] = Field(default_factory=list, description="Browser mode: allowed Origins")
    rate_limit_per_minute: int | None = Field(default=None, ge=1, description="Browser mode, per client IP")
    honeypot_field: str | None = Field(default=None, description="Browser mode: hidden field bots fill")

    @model_validator(mode="after")
    def _complete(self) -> SourceAuth:
        if self.mode == "hmac" and not (self.secret and self.secret.get_secret_value()):
            raise ValueError("hmac mode needs a secret")
        if self.mode == "browser":
            if not self.allowed_origins:
                raise ValueError("browser mode needs allowed_origins (use [\"*\"] to allow any)")
            if self.honeypot_field is None:
                self.honeypot_field = "website"
        return self


def default_auth(kind: str) -> SourceAuth | None:
    """What a source gets when its creator says nothing: only douyin has a safe default (no secret set)."""
    return SourceAuth(mode="none") if kind == "douyin" else None


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str | None = Field(default=None, pattern=KEY_PATTERN,
                            description="Public key used in the intake URL; generated when omitted")
    name: str = Field(min_length=1, max_length=200)
    kind: SourceKind
    enabled: bool = True
    field_mapping: dict[str, str] = Field(
        default_factory=dict, description="incoming field (dotted path for nested JSON) → lead field; '-' drops it")
    options: dict[str, list[str]] = Field(
        default_factory=dict, description="categorical lead field → allowed values (free text refused)")
    native_id_field: str | None = Field(
        default=None, description="Payload field holding the channel's own submission id (idempotency)")
    auth: SourceAuth | None = None
    description: str | None = None


class SourcePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    enabled: bool | None = None
    field_mapping: dict[str, str] | None = None
    options: dict[str, list[str]] | None = None
    native_id_field: str | None = None
    auth: SourceAuth | None = None
    description: str | None = None

    _not_null = not_null("name", "enabled", "field_mapping", "options", "auth")


class SourceAuthOut(BaseModel):
    mode: AuthMode
    hmac_scheme: HmacScheme | None = None
    secret_set: bool
    allowed_origins: list[str]
    rate_limit_per_minute: int | None
    honeypot_field: str | None


class SourceOut(BaseModel):
    id: uuid.UUID
    key: str
    name: str
    kind: SourceKind
    enabled: bool
    intake_path: str
    field_mapping: dict[str, str]
    options: dict[str, list[str]]
    native_id_field: str | None
    auth: SourceAuthOut
    description: str | None
    created_at: datetime
    updated_at: datetime
