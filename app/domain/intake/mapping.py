"""R1.2 / R1.5 / R1.7: map a channel's payload onto the lead model, validate it, and log every field's fate."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.domain.errors import FieldError
from app.domain.intake.phone import normalize_mainland_mobile

# Lead columns a mapping can target; any other target lands in lead.attributes.
LEAD_FIELDS = ("name", "phone", "email", "wechat", "company", "province", "city", "gender", "message")
IGNORE = "-"  # a mapping target that drops the field on purpose
_MAX_LENGTH = {"name": 100, "email": 320, "wechat": 100, "company": 200, "province": 100, "city": 100,
               "gender": 20, "message": 5000}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ATTRIBUTE_MAX = 1000

_COMMON = {name: name for name in LEAD_FIELDS} | {
    "mobile": "phone", "tel": "phone", "telephone": "phone", "phone_number": "phone", "手机": "phone",
    "手机号": "phone", "电话": "phone", "姓名": "name", "full_name": "name", "微信": "wechat",
    "weixin": "wechat", "公司": "company", "company_name": "company", "remark": "message",
    "comment": "message", "留言": "message", "城市": "city", "省份": "province",
}
# What each kind of channel sends when nobody configured anything (platform-apis.md).
DEFAULT_MAPPINGS: dict[str, dict[str, str]] = {
    "douyin": _COMMON | {
        "telphone": "phone", "telephone": "phone", "province_name": "province", "city_name": "city",
        "weixin": "wechat", "remark": "message", "adv_name": "ad_name", "clue_source": "clue_source",
        "clue_type": "clue_type", "external_url": "landing_url", "location": "location",
        "create_time": "platform_created_at", "flow_type": "flow_type",
    },
    "wechat_h5": _COMMON,
    "qr_offline": _COMMON,
    "generic": _COMMON,
}
DEFAULT_NATIVE_ID_FIELDS = {"douyin": ("id", "clue_id")}


@dataclass
class MappedSubmission:
    fields: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    errors: list[FieldError] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        return not self.errors


def flatten(payload: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects become dotted paths ("remark_dict.公司规模") so a mapping can name any answer."""
    flat: dict[str, Any] = {}
    for key, value in payload.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def effective_mapping(kind: str, configured: dict[str, str]) -> dict[str, str]:
    return DEFAULT_MAPPINGS.get(kind, _COMMON) | configured


def map_submission(
    payload: dict[str, Any],
    *,
    kind: str,
    field_mapping: dict[str, str],
    options: dict[str, list[str]],
    meta_fields: frozenset[str] = frozenset(),
) -> MappedSubmission:
    """Map and validate one payload. Never raises for bad data: every problem is a FieldError in the result.

    `meta_fields` (the honeypot, the channel's own submission id) are logged but never mapped.
    """
    # A field with an option list is taken under its own name unless mapped otherwise: declaring the options
    # and forgetting the mapping must not let free text through unchecked (it used to be dropped as unmapped).
    mapping = effective_mapping(kind, {name: name for name in options} | field_mapping)
    result = MappedSubmission()
    sources_of: dict[str, str] = {}
    for source_field, value in flatten(payload).items():
        if source_field in meta_fields:
            result.log.append({"source_field": source_field, "status": "meta"})
            continue
        target = mapping.get(source_field)
        if target is None:
            result.log.append({"source_field": source_field, "status": "unmapped"})
            continue
        if target == IGNORE:
            result.log.append({"source_field": source_field, "status": "ignored"})
            continue
        if _is_blank(value):
            result.log.append({"source_field": source_field, "target": target, "status": "empty"})
            continue
        if target in sources_of:
            result.log.append({"source_field": source_field, "target": target, "status": "superseded",
                               "by": sources_of[target]})
            continue
        clean, error = _validate(target, value, options)
        if error is not None:
            error.source_field = source_field
            result.errors.append(error)
            result.log.append({"source_field": source_field, "target": target, "status": "invalid",
                               "code": error.code})
            continue
        sources_of[target] = source_field
        (result.fields if target in LEAD_FIELDS else result.attributes)[target] = clean
        result.log.append({"source_field": source_field, "target": target, "status": "mapped"})
    for required in ("name", "phone"):
        if required not in result.fields and not any(e.field == required for e in result.errors):
            result.errors.append(FieldError(required, "required", f"{required} is required"))
    return result


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value in ([], {})


def _validate(target: str, value: Any, options: dict[str, list[str]]) -> tuple[Any, FieldError | None]:
    if target == "phone":
        return normalize_mainland_mobile(value)
    if target in options:
        return _validate_option(target, value, options[target])
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        if target in LEAD_FIELDS:
            return None, FieldError(target, "invalid_type", f"{target} must be text")
        return value, None  # custom attributes may be lists or numbers
    text = str(value).strip()
    limit = _MAX_LENGTH.get(target, _ATTRIBUTE_MAX)
    if len(text) > limit:
        return None, FieldError(target, "too_long", f"{target} is longer than {limit} characters")
    if target == "email" and not _EMAIL.match(text):
        return None, FieldError(target, "invalid_email", "not an email address")
    return text, None


def _validate_option(target: str, value: Any, allowed: list[str]) -> tuple[Any, FieldError | None]:
    """Categorical fields take only values from the source's option list (free text refused)."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        wanted = str(value).strip().casefold()
        for option in allowed:
            if option.casefold() == wanted:
                return option, None
    shown = ", ".join(allowed[:20])
    return None, FieldError(target, "not_in_options", f"{target} must be one of: {shown}")
