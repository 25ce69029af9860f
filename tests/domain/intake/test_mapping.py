"""R1.5 / R1.7: mapping and its per-field log, alone."""

from app.domain.intake.mapping import map_submission


def test_configured_mapping_overrides_defaults_and_dash_drops_a_field():
    result = map_submission({"name": "甲", "tel": "13800138000", "city": "上海"}, kind="generic",
                            field_mapping={"city": "-"}, options={})
    assert result.is_valid and result.fields == {"name": "甲", "phone": "+8613800138000"}
    assert {"source_field": "city", "status": "ignored"} in result.log


def test_first_non_empty_source_wins_and_the_other_is_logged_superseded():
    result = map_submission({"name": "甲", "telphone": "", "telephone": "13800138000", "mobile": "13900139000"},
                            kind="douyin", field_mapping={}, options={})
    assert result.fields["phone"] == "+8613800138000"
    statuses = {e["source_field"]: e["status"] for e in result.log}
    assert statuses == {"name": "mapped", "telphone": "empty", "telephone": "mapped", "mobile": "superseded"}


def test_nested_answers_are_addressable_by_dotted_path():
    result = map_submission({"name": "甲", "phone": "13800138000", "remark_dict": {"预算": "10万以上"}},
                            kind="douyin", field_mapping={"remark_dict.预算": "budget_range"},
                            options={"budget_range": ["10万以下", "10万以上"]})
    assert result.attributes == {"budget_range": "10万以上"}


def test_core_text_fields_refuse_objects_and_overlong_values():
    result = map_submission({"name": "x" * 101, "phone": "13800138000", "email": "not-an-email"},
                            kind="generic", field_mapping={}, options={})
    assert {(e.field, e.code) for e in result.errors} == {("name", "too_long"), ("email", "invalid_email")}
