"""R1.5: mainland China mobile numbers in every common spelling → E.164."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from app.domain.errors import FieldError

# Separators people type between digit groups, full-width ones included.
_SEPARATORS = re.compile(r"[\s\-‐‑–—.()（）·/]+")
_BARE_COUNTRY_CODE = re.compile(r"^86(1\d{10})$")
_DIGITS = re.compile(r"^\+?\d+$")  # \d is Unicode-aware: full-width digits pass
_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


def normalize_mainland_mobile(raw: object, *, field: str = "phone") -> tuple[str | None, FieldError | None]:
    """Return (E.164, None) for a mainland mobile number, else (None, the reason as a FieldError).

    Accepts spaces, dashes, dots and brackets, full-width digits, and the prefixes +86, 0086, 86 and
    (+86). A bare "86" prefix is read as the country code only when what follows is an 11-digit mobile.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, FieldError(field, "required", "phone is required")
    if not isinstance(raw, str | int):
        return None, FieldError(field, "invalid_type", "phone must be a string")
    text = _SEPARATORS.sub("", str(raw).strip()).replace("＋", "+")
    if not _DIGITS.match(text):
        return None, FieldError(field, "invalid_phone", "phone may hold only digits, spaces, dashes and +")
    if not text.isascii():  # full-width or other Unicode digits → ASCII
        text = ("+" if text.startswith("+") else "") + phonenumbers.normalize_digits_only(text)
    bare = _BARE_COUNTRY_CODE.match(text)
    if bare:
        text = bare.group(1)
    try:
        number = phonenumbers.parse(text, "CN")
    except NumberParseException:
        return None, FieldError(field, "invalid_phone", "not a phone number")
    if number.country_code != 86:
        return None, FieldError(field, "not_mainland_mobile", "only mainland China mobile numbers are accepted")
    kind = phonenumbers.number_type(number)  # UNKNOWN exactly when is_valid_number() would say no
    if kind == PhoneNumberType.UNKNOWN:
        return None, FieldError(field, "invalid_phone", "not a valid mainland China phone number")
    if kind not in _MOBILE_TYPES:
        return None, FieldError(field, "not_mainland_mobile", "a mobile number is required, not a landline")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


# A run of (Unicode) digits with the separators people and form encodings put between them.
_DIGIT_RUN = re.compile(r"[+＋(（]?\d[\d\s\-‐‑–—.()（）+＋/]{9,24}\d")
_MAINLAND_MOBILE = re.compile(r"^(?:0086|86)?(1[3-9]\d)(\d{4})(\d{4})$")


def _mask_run(match: re.Match[str]) -> str:
    digits = "".join(str(int(ch)) for ch in match.group(0) if ch.isdigit())
    mobile = _MAINLAND_MOBILE.match(digits)
    return f"{mobile.group(1)}****{mobile.group(3)}" if mobile else match.group(0)


def mask_phones(text: str) -> str:
    """Mask every mainland mobile number inside free text, in any spelling intake accepts:
    13812348000, +86 138-1234-8000, 0086 138.1234.8000, 138+1234+8000, full-width digits → 138****8000."""
    return _DIGIT_RUN.sub(_mask_run, text)
