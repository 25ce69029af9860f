"""PATCH bodies: a field may be left out (unchanged) or given; for some, null means nothing and is refused."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator


def not_null(*fields: str) -> Any:
    """A validator refusing an explicit null on `fields` (their columns have no 'nothing'), field by field.

    Use in a model body: `_not_null = not_null("name", "enabled")`.
    """

    def check(cls: type, value: Any) -> Any:
        if value is None:
            raise ValueError("leave the field out to keep it; null is not a value here")
        return value

    return field_validator(*fields)(classmethod(check))
