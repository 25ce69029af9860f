"""R3.1: DingTalk robot signing, against a fake that verifies it."""

from __future__ import annotations

import httpx
import pytest

from app.domain.notify.dingtalk import DingTalkRobot
from app.domain.notify.errors import DeliveryError
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.server import serve


async def test_signed_message_is_accepted_and_a_wrong_secret_is_310000():
    fake = FakeDingTalk()
    async with serve(fake.app()) as url, httpx.AsyncClient() as http:
        robot = DingTalkRobot(http, url=url + "/robot/send", access_token=fake.access_token, secret=fake.secret)
        await robot.send_text("线索 LD-1 无人认领", at_mobiles=["13800138000"])
        assert fake.messages[0]["at"]["atMobiles"] == ["13800138000"]
        bad = DingTalkRobot(http, url=url + "/robot/send", access_token=fake.access_token, secret="SECwrong")
        with pytest.raises(DeliveryError) as caught:
            await bad.send_text("x")
    assert (caught.value.kind, caught.value.errcode) == ("signature_rejected", 310000)


async def test_over_twenty_a_minute_is_rate_limited():
    fake = FakeDingTalk(sent_this_minute=20)
    async with serve(fake.app()) as url, httpx.AsyncClient() as http:
        robot = DingTalkRobot(http, url=url + "/robot/send", access_token=fake.access_token, secret=fake.secret)
        with pytest.raises(DeliveryError) as caught:
            await robot.send_markdown("告警", "x")
    assert caught.value.kind == "rate_limited" and caught.value.is_retryable
