"""R1.5: mainland China mobile numbers in every common spelling → E.164."""

from __future__ import annotations

import re
from collections.abc import Callable

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from app.domain.errors import FieldError

# Separators people type between digit groups, full-width ones included.
_SEPARATORS = re.compile(r"[\s\-‐‑–—.()（）·/]+")
_BARE_COUNTRY_CODE = re.compile(r"^86(1\d{10})$")
_DIGITS = re.compile(r"^\+?\d+$")  # \d is Unicode-aware: full-width digits pass
_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


def _desc_matcher(desc: phonenumbers.PhoneNumberDesc | None) -> Callable[[str], bool]:
    """phonenumbers' own test of a national number against one number type of the metadata."""
    if desc is None or desc.national_number_pattern is None:
        return lambda _digits: False
    pattern, lengths = re.compile(desc.national_number_pattern), frozenset(desc.possible_length or ())
    return lambda digits: (not lengths or len(digits) in lengths) and pattern.fullmatch(digits) is not None


_CN = phonenumbers.PhoneMetadata.metadata_for_region("CN")
_GENERAL, _CN_MOBILE = _desc_matcher(_CN.general_desc), _desc_matcher(_CN.mobile)
# number_type() answers these before it looks at mobile: a number matching one of them is not MOBILE
_EARLIER_TYPES = [_desc_matcher(getattr(_CN, name)) for name in (
    "premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail")]
_PLAIN_MOBILE = re.compile(r"(?:\+86|0086|86)?(1[3-9]\d{9})")


def _is_mainland_mobile(national: str) -> bool:
    """True only where phonenumbers' number_type() says MOBILE or FIXED_LINE_OR_MOBILE for this CN number,
    from the same metadata, without parsing (tests/domain check it agrees over every 5-digit prefix)."""
    return _GENERAL(national) and _CN_MOBILE(national) and not any(earlier(national) for earlier in _EARLIER_TYPES)


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
    if text.isascii():
        plain = _PLAIN_MOBILE.fullmatch(text)
        if plain and _is_mainland_mobile(plain.group(1)):  # the common spelling, decided as phonenumbers would
            return "+86" + plain.group(1), None
    else:  # full-width or other Unicode digits → ASCII
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
