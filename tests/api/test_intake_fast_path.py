"""The intake fast path and FastAPI's route serve the same contract: same statuses, same bodies, same headers."""

from __future__ import annotations

import httpx
import pytest

from app.api import intake as intake_api
from app.main import create_app
from tests.conftest import TEST_CLIENT_IP


@pytest.fixture
async def routed_client(settings, clock, db):
    """The app without the fast path: every intake request goes through FastAPI's router."""
    application = create_app(settings, clock)
    application.intake_fast_path = False
    async with application.router.lifespan_context(application):
        # an unexpected error is answered 500, then re-raised to the server: a real server logs it, goes on
        transport = httpx.ASGITransport(app=application, client=(TEST_CLIENT_IP, 40000), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://leadflow.test") as http:
            yield http


def _shape(response: httpx.Response) -> tuple:
    body = response.json()
    kept = {k: v for k, v in body.items() if k not in ("lead_id", "submission_id")}
    return (response.status_code, response.headers["content-type"], sorted(body), kept,
            response.headers.get("retry-after"))


async def test_both_entry_points_answer_alike(app, client, routed_client, make_source):
    assert app.intake_fast_path  # `client` goes through the fast path
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


async def test_intake_is_answered_ahead_of_the_middleware_stack(app, client, make_source):
    await make_source(key="fast")

    async def router_stack(scope, receive, send):
        raise AssertionError(f"{scope['method']} {scope['path']} went through Starlette's stack")

    app.middleware_stack = router_stack
    r = await client.post("/v1/intake/fast", json={"name": "张三", "phone": "13700137000"},
                          headers={"X-Request-ID": "req-fast"})
    assert r.status_code == 201 and r.json()["status"] == "accepted"
    assert r.headers["x-request-id"] == "req-fast"  # the request context wraps the fast path too
    with pytest.raises(AssertionError, match="went through"):
        await client.get("/v1/sources")


async def test_an_unexpected_error_is_a_problem_on_both_paths(client, routed_client, make_source, monkeypatch):
    await make_source(key="boom")

    async def broken(*_args, **_kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(intake_api, "serve_intake", broken)
    fast = await client.post("/v1/intake/boom", json={"name": "张三", "phone": "13700137001"})
    assert fast.status_code == 500 and fast.headers["content-type"] == "application/problem+json"
    assert fast.json()["type"].endswith("internal-error") and "bug" not in fast.text
    routed = await routed_client.post("/v1/intake/boom", json={"name": "张三", "phone": "13700137001"})
    assert _shape(fast) == _shape(routed)
