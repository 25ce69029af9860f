"""R1.5: the phone normaliser, alone."""

import phonenumbers
import pytest

from app.domain.intake.phone import mask_phones, normalize_mainland_mobile


@pytest.mark.parametrize(("raw", "code"), [
    ("", "required"), (None, "required"), ("13800138000x", "invalid_phone"), ("12345", "invalid_phone"),
    ("010-12345678", "not_mainland_mobile"), ("+1 415 555 2671", "not_mainland_mobile"),
    ("+852 9123 4567", "not_mainland_mobile"), ("1380013800", "invalid_phone"), (["13800138000"], "invalid_type"),
])
def test_non_mobile_input_is_refused_with_a_reason(raw, code):
    e164, error = normalize_mainland_mobile(raw)
    assert e164 is None and error.code == code and error.field == "phone"


def test_integers_from_json_are_read_as_numbers():
    assert normalize_mainland_mobile(13800138000) == ("+8613800138000", None)


def test_masking_finds_numbers_in_any_spelling_inside_text():
    text = "A: 13812348000, B: +86 139-1234-5678, order 202611250001234"
    assert mask_phones(text) == "A: 138****8000, B: 139****5678, order 202611250001234"


def test_masking_covers_every_spelling_intake_accepts():
    spellings = ("008613812348000", "138.1234.8000", "138+1234+8000", "１３８１２３４８０００", "(+86) 138 1234 8000")
    for spelled in spellings:
        assert "138****8000" in mask_phones(f"phone={spelled};"), spelled
    assert mask_phones("at 2026-11-25 12:00:00.123456") == "at 2026-11-25 12:00:00.123456"


def _by_phonenumbers(national: str) -> str | None:
    """The reference: phonenumbers' full parse and number_type(), as intake used them for every number."""
    number = phonenumbers.parse(national, "CN")
    kind = phonenumbers.number_type(number)
    if kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


@pytest.mark.parametrize("spelling", ["{}", "+86{}", "0086{}", "86{}", "+86 {}-{}-{}"])
def test_the_plain_spelling_shortcut_agrees_with_phonenumbers_on_every_prefix(spelling):
    """Plain 11-digit mobiles skip parsing (app/domain/intake/phone.py); over every 5-digit prefix of 13x–19x
    and two line numbers each, the answer must be exactly phonenumbers' own."""
    for prefix in range(13000, 20000):
        for line in ("000000", "987654"):
            national = f"{prefix}{line}"
            parts = (national[:3], national[3:7], national[7:]) if spelling.count("{}") == 3 else (national,)
            e164, _error = normalize_mainland_mobile(spelling.format(*parts))
            assert e164 == _by_phonenumbers(national), national
