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
