"""Property-based tests (hypothesis) for the phone normaliser, the field mapping and signatures."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.intake.mapping import map_submission
from app.domain.intake.phone import mask_phones, normalize_mainland_mobile
from app.domain.intake.source_auth import sign_leadflow, verify_signature

PREFIXES = ["130", "131", "135", "136", "138", "139", "150", "158", "166", "177", "186", "188", "199"]
mobiles = st.builds(lambda p, rest: p + rest, st.sampled_from(PREFIXES), st.text("0123456789", min_size=8,
                                                                                 max_size=8))
separators = st.sampled_from(["", " ", "-", ".", " - "])
country = st.sampled_from(["", "+86", "+86 ", "0086", "0086 ", "86", "(+86)"])
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def spell(number: str, sep: str, prefix: str, full_width: bool) -> str:
    text = f"{prefix}{number[:3]}{sep}{number[3:7]}{sep}{number[7:]}"
    return text.translate(FULL_WIDTH) if full_width else text


@settings(max_examples=300, deadline=None)
@given(mobiles, separators, country, st.booleans())
def test_every_spelling_of_a_mobile_normalises_to_the_same_e164_and_is_masked(number, sep, prefix, full_width):
    spelled = spell(number, sep, prefix, full_width)
    e164, error = normalize_mainland_mobile(spelled)
    assert error is None and e164 == "+86" + number
    masked = mask_phones(f"电话 {spelled} 谢谢")
    assert number not in masked.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    assert f"{number[:3]}****{number[7:]}" in masked


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_the_normaliser_never_raises(text):
    e164, error = normalize_mainland_mobile(text)
    assert (e164 is None) != (error is None)
    if e164 is not None:
        assert e164.startswith("+861") and len(e164) == 14


@settings(max_examples=300, deadline=None)
@given(mobiles, st.integers(0, 10), st.sampled_from("abcxyzABCXYZ一二三"))
def test_a_valid_mobile_with_a_letter_in_it_is_refused(digits, position, letter):
    spelled = digits[:position] + letter + digits[position:]
    e164, error = normalize_mainland_mobile(spelled)
    assert e164 is None and error is not None


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), st.one_of(st.text(max_size=20), st.integers(),
                                                                    st.none(), st.booleans()), max_size=8))
def test_mapping_never_raises_and_logs_every_incoming_field(payload):
    result = map_submission(payload, kind="generic", field_mapping={}, options={"company_size": ["1-10"]})
    assert {entry["source_field"] for entry in result.log} == set(payload)
    assert result.is_valid == ("name" in result.fields and "phone" in result.fields and not result.errors)


NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.text(min_size=1, max_size=20), st.integers(-300, 300))
def test_a_signature_verifies_for_its_body_only(body, secret, skew):
    ts = int(NOW.timestamp()) + skew
    headers = {"x-leadflow-timestamp": str(ts), "x-leadflow-signature": sign_leadflow(secret, ts, body)}
    _, failure = verify_signature(scheme="leadflow", secret=secret, headers=headers, body=body, now=NOW,
                                  tolerance_s=300)
    assert failure is None
    _, tampered = verify_signature(scheme="leadflow", secret=secret, headers=headers, body=body + b"x", now=NOW,
                                   tolerance_s=300)
    assert tampered is not None and tampered.code == "signature_invalid"
