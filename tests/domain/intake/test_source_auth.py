"""R1.11: signature verification, alone."""

from datetime import UTC, datetime

from app.domain.intake.source_auth import check_origin, sign_leadflow, verify_signature

NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
TS = int(NOW.timestamp())


def verify(headers, body=b"{}"):
    return verify_signature(scheme="leadflow", secret="k", headers=headers, body=body, now=NOW, tolerance_s=300)


def test_signature_over_timestamp_and_body_verifies():
    sig, failure = verify({"x-leadflow-timestamp": str(TS), "x-leadflow-signature": sign_leadflow("k", TS, b"{}")})
    assert failure is None and len(sig) == 64


def test_changed_body_or_clock_skew_fails():
    headers = {"x-leadflow-timestamp": str(TS), "x-leadflow-signature": sign_leadflow("k", TS, b"{}")}
    assert verify(headers, body=b'{"a":1}')[1].code == "signature_invalid"
    old = TS - 301
    skewed = {"x-leadflow-timestamp": str(old), "x-leadflow-signature": sign_leadflow("k", old, b"{}")}
    assert verify(skewed)[1].code == "timestamp_out_of_tolerance"
    assert verify({"x-leadflow-timestamp": "soon", "x-leadflow-signature": "x"})[1].code == "timestamp_invalid"


def test_origin_allowlist_ignores_trailing_slash_and_star_allows_all():
    assert check_origin("https://a.cn/", ["https://a.cn"]) is None
    assert check_origin(None, ["*"]) is None
    assert check_origin(None, ["https://a.cn"]).code == "origin_missing"
