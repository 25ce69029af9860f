"""The intake fast path and FastAPI's route serve the same contract: same statuses, same bodies, same headers."""

from __future__ import annotations

import httpx
import pytest

from app.api.intake import IntakeFastPath
from app.main import create_app
from tests.conftest import TEST_CLIENT_IP


@pytest.fixture
async def routed_client(settings, clock, db):
    """The app without the fast path: every intake request goes through FastAPI's router."""
    application = create_app(settings, clock)
    application.user_middleware = [m for m in application.user_middleware if m.cls is not IntakeFastPath]
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=(TEST_CLIENT_IP, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://leadflow.test") as http:
            yield http


def _shape(response: httpx.Response) -> tuple:
    body = response.json()
    kept = {k: v for k, v in body.items() if k not in ("lead_id", "submission_id")}
    return (response.status_code, response.headers["content-type"], sorted(body), kept,
            response.headers.get("retry-after"))


async def test_both_entry_points_answer_alike(app, client, routed_client, make_source):
    assert any(m.cls is IntakeFastPath for m in app.user_middleware)  # `client` goes through the fast path
    await make_source(key="web", options={"city": ["上海", "北京"]})
    def cases(phone: str) -> list[tuple[dict, int]]:
        return [
            ({"json": {"name": "张三", "phone": phone}}, 201),
            ({"json": {"name": "张三", "phone": phone}}, 200),  # same phone: merged into the open lead
            ({"json": {"name": "", "phone": "12", "city": "火星"}}, 422),
            ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400),
            ({"content": b"x" * (70 * 1024), "headers": {"content-type": "application/json"}}, 413),
        ]

    for (fast_kwargs, status), (routed_kwargs, _) in zip(cases("13800138000"), cases("13900139000"), strict=True):
        fast = await client.post("/v1/intake/web", **fast_kwargs)
        routed = await routed_client.post("/v1/intake/web", **routed_kwargs)
        assert fast.status_code == status, fast.text
        assert _shape(fast) == _shape(routed)
    for path in ("/v1/intake/nope", "/v1/intake/web/extra"):
        fast, routed = await client.post(path, json={}), await routed_client.post(path, json={})
        assert fast.status_code == routed.status_code == 404 and fast.json() == routed.json()
