"""R3.1 / R3.3: the WeCom client against a fake WeCom over real HTTP."""

from __future__ import annotations

import httpx
import pytest
import redis.asyncio as aioredis

from app.domain.notify.errors import DeliveryError, classify_wecom_error, explain_ip_block
from app.domain.notify.wecom import WeComApp, WeComRobot
from tests.fakes.wecom import CALLER_IP


@pytest.fixture
async def app_client(fake, stack, db):
    redis = aioredis.from_url(stack.redis_url)
    async with httpx.AsyncClient(timeout=5) as http:
        yield WeComApp(http, redis, base_url=fake.base_url, corp_id=fake.corp_id, secret=fake.secret,
                       agent_id=fake.agent_id)
    await redis.aclose()


async def test_token_is_fetched_once_and_reused(fake, app_client):
    for i in range(3):
        await app_client.send(["rep0"], "text", {"content": f"新线索 LD-20261125-00000{i}"})
    assert fake.token_requests == 1 and len(fake.messages) == 3
    assert fake.messages[0]["touser"] == "rep0" and fake.messages[0]["enable_duplicate_check"] == 1


async def test_a_resent_identical_message_is_absorbed_by_wecoms_duplicate_check(fake, app_client):
    for _ in range(2):  # e.g. a worker killed between WeCom's answer and our commit sends it again
        await app_client.send(["rep0"], "text", {"content": "新线索 LD-20261125-000001"})
    assert len(fake.messages) == 1 and fake.duplicates_dropped == 1


async def test_invalidated_token_is_refreshed_once_and_the_call_repeated(fake, app_client):
    await app_client.send(["rep0"], "text", {"content": "一"})
    fake.invalidate_tokens()
    await app_client.send(["rep0"], "text", {"content": "二"})
    fake.expire_tokens()
    await app_client.send(["rep0"], "text", {"content": "三"})
    assert fake.token_requests == 3 and [m["text"]["content"] for m in fake.messages] == ["一", "二", "三"]


async def test_ip_refusal_is_classified_with_the_reported_ip(fake, app_client):
    fake.refuse_ip = True
    with pytest.raises(DeliveryError) as caught:
        await app_client.send(["rep0"], "text", {"content": "x"})
    assert (caught.value.kind, caught.value.errcode, caught.value.ip) == ("ip_not_allowed", 60020, CALLER_IP)
    assert caught.value.is_retryable
    text = explain_ip_block(caught.value, ["198.51.100.0/24"])
    assert f"Add {CALLER_IP}" in text and "企业可信IP" in text and "NOT in LEADFLOW_EGRESS_IPS" in text
    assert "platform-side list is what is missing" in explain_ip_block(caught.value, ["203.0.113.0/24"])


async def test_http_403_counts_as_ip_refusal(fake, app_client):
    fake.http_403 = True
    with pytest.raises(DeliveryError) as caught:
        await app_client.send(["rep0"], "text", {"content": "x"})
    assert caught.value.kind == "ip_not_allowed"


@pytest.mark.parametrize(("setup", "kind", "retry"), [
    ({"rate_limited": True}, "rate_limited", True), ({"busy": 1}, "system_busy", True),
    ({"secret": "rotated"}, "invalid_secret", False)])
async def test_errors_are_classified(fake, app_client, setup, kind, retry):
    for name, value in setup.items():
        setattr(fake, name, value)
    with pytest.raises(DeliveryError) as caught:
        await app_client.send(["rep0"], "text", {"content": "x"})
    assert caught.value.kind == kind and caught.value.is_retryable is retry


async def test_all_recipients_invalid_is_81013(fake, app_client):
    with pytest.raises(DeliveryError) as caught:
        await app_client.send(["ghost"], "text", {"content": "x"})
    assert (caught.value.kind, caught.value.is_retryable) == ("recipients_invalid", False)
    answer = await app_client.send(["rep0", "ghost"], "text", {"content": "x"})
    assert answer["invaliduser"] == "ghost"


async def test_group_robot_mentions_and_refuses_a_wrong_key(fake):
    async with httpx.AsyncClient() as http:
        robot = WeComRobot(http, base_url=fake.base_url, key="robot-key")
        await robot.send_text("线索分配失败 LD-1", mention_userids=["manager"])
        assert fake.robot_messages[0]["text"]["mentioned_list"] == ["manager"]
        wrong = WeComRobot(http, base_url=fake.base_url, key="nope")
        with pytest.raises(DeliveryError) as caught:
            await wrong.send_markdown("x")
    assert caught.value.kind == "invalid_webhook"


def test_classification_branches_on_errcode_not_text():
    assert classify_wecom_error(60020, "something else entirely").kind == "ip_not_allowed"
    assert classify_wecom_error(0 or 48002, "").kind == "not_permitted"
    assert classify_wecom_error(None, "", 502).kind == "http_error"


async def test_textcard_and_markdown_messages_are_sent_as_documented(fake, app_client):
    await app_client.send(["rep1"], "textcard", {"title": "新线索", "description": "LD-1 张三", "url": "https://crm",
                                                 "btntxt": "详情"})
    await app_client.send(["rep1"], "markdown", {"content": "**新线索** LD-2"})
    assert [m["msgtype"] for m in fake.messages] == ["textcard", "markdown"]
    assert fake.messages[0]["textcard"]["btntxt"] == "详情"
    with pytest.raises(DeliveryError) as caught:
        await app_client.send(["rep1"], "markdown", {"content": "长" * 1000})  # 3000 bytes > 2048
    assert caught.value.errcode == 45002
