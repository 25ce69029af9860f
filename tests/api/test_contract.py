"""The checked-in OpenAPI contract is what the service serves; `make openapi` regenerates it."""

from __future__ import annotations

import json
from pathlib import Path

from app.cli import render_openapi

CONTRACT = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


async def test_served_schema_matches_the_checked_in_contract(client, app):
    served = (await client.get("/openapi.json")).json()
    assert served == json.loads(CONTRACT.read_text()), "contract drifted: run `make openapi` and review the diff"
    assert render_openapi(app) == CONTRACT.read_text()


def test_every_intake_error_is_documented_as_problem_details():
    contract = json.loads(CONTRACT.read_text())
    responses = contract["paths"]["/v1/intake/{source_key}"]["post"]["responses"]
    for status in ("400", "401", "403", "404", "409", "413", "415", "422", "429", "503"):
        content = responses[status]["content"]
        assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}


def test_every_422_in_the_contract_is_the_problem_shape_the_service_sends():
    """FastAPI documents request validation as its own `HTTPValidationError`; leadflow answers problem details."""
    contract = json.loads(CONTRACT.read_text())
    documented = {f"{method.upper()} {path}": op["responses"]["422"]["content"]
                  for path, ops in contract["paths"].items() for method, op in ops.items() if "422" in op["responses"]}
    assert "GET /v1/leads" in documented
    wrong = [name for name, content in documented.items()
             if content.get("application/problem+json", {}).get("schema") != {"$ref": "#/components/schemas/Problem"}]
    assert not wrong
    assert "HTTPValidationError" not in CONTRACT.read_text()


async def test_an_unknown_lead_status_filter_is_a_field_error(client, admin):
    answer = await client.get("/v1/leads", params={"status": "opened"}, headers=admin)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    [error] = answer.json()["errors"]
    assert error["field"] == "query.status" and error["code"] == "literal_error"
