"""R3.5 alert messages to the ops groups: each group gets each message once, and never a stale one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from app.db import unit_of_work
from app.domain.alerts.delivery import send_alert
from app.domain.alerts.service import raise_alert, resolve_alert
from app.domain.notify.delivery import Channels
from app.domain.notify.dingtalk import DingTalkRobot
from app.domain.notify.errors import DeliveryError
from app.domain.outbox.models import OutboxMessage
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.server import serve

NOW = datetime(2026, 11, 25, 6, 23, tzinfo=UTC)


@pytest.fixture
async def groups(fake, settings, app):
    """The ops WeCom group (fake WeCom robot) and the ops DingTalk group (fake DingTalk), over HTTP."""
    ding = FakeDingTalk()
    async with serve(ding.app()) as url, httpx.AsyncClient() as http:
        ops = settings.model_copy(update={
            "wecom_base_url": fake.base_url, "ops_wecom_robot_key": SecretStr("robot-key"),
            "ops_dingtalk_url": url + "/robot/send", "ops_dingtalk_token": SecretStr(ding.access_token),
            "ops_dingtalk_secret": SecretStr(ding.secret)})
        yield fake, ding, Channels(http=http, redis=app.state.redis, settings=ops)


async def deliver_due(app, channels, now) -> list[str]:
    """Run every due send_alert row once, as the worker would."""
    async with unit_of_work(app.state.sessions) as session:
        due = list(await session.scalars(select(OutboxMessage.id).where(
            OutboxMessage.job == "send_alert", OutboxMessage.processed_at.is_(None),
            OutboxMessage.not_before.is_(None) | (OutboxMessage.not_before <= now)).order_by(OutboxMessage.created_at)))
    results = []
    for outbox_id in due:
        async with unit_of_work(app.state.sessions) as session:
            results.append(await send_alert(session, outbox_id, now, channels))
    return results


async def test_a_group_that_failed_is_retried_alone(app, groups):
    wecom, ding, channels = groups
    ding.sent_this_minute = 20  # DingTalk's 20-a-minute limit: 130101, retryable
    async with unit_of_work(app.state.sessions) as session:
        await raise_alert(session, "probe:wecom_app", "WeCom refuses our IP", NOW, timedelta(minutes=30))
    assert await deliver_due(app, channels, NOW) == ["partly_sent"]
    assert len(wecom.robot_messages) == 1 and ding.messages == []
    ding.sent_this_minute = 0
    assert await deliver_due(app, channels, NOW + timedelta(minutes=5)) == ["sent"]
    assert len(wecom.robot_messages) == 1 and len(ding.messages) == 1  # WeCom's group is not told twice


async def test_a_firing_message_still_waiting_after_the_alert_resolved_is_dropped(app, groups):
    wecom, ding, channels = groups
    ding.sent_this_minute = 20
    wecom.robot_keys.clear()  # both groups refuse for now (the WeCom robot with 93000: not retryable)
    ding_only = channels.settings.model_copy(update={"ops_wecom_robot_key": None})
    channels = Channels(http=channels.http, redis=channels.redis, settings=ding_only)
    async with unit_of_work(app.state.sessions) as session:
        await raise_alert(session, "probe:wecom_app", "WeCom refuses our IP", NOW, timedelta(minutes=30))
    assert await deliver_due(app, channels, NOW) == ["retry"]
    async with unit_of_work(app.state.sessions) as session:
        await resolve_alert(session, "probe:wecom_app", NOW + timedelta(seconds=30))
    ding.sent_this_minute = 0
    assert sorted(await deliver_due(app, channels, NOW + timedelta(minutes=5))) == ["sent", "superseded"]
    [message] = ding.messages
    assert "恢复" in message["text"]["content"]  # the group reads the recovery, not a stale "firing"


async def test_a_non_json_or_unreachable_dingtalk_is_a_classified_failure():
    async def html(_request):
        return HTMLResponse("<html>502 Bad Gateway</html>")

    async with serve(Starlette(routes=[Route("/robot/send", html, methods=["POST"])])) as url, \
            httpx.AsyncClient() as http:
        with pytest.raises(DeliveryError) as caught:
            await DingTalkRobot(http, url=url + "/robot/send", access_token="t", secret=None).send_text("x")
        assert caught.value.kind == "http_error" and caught.value.is_retryable
        with pytest.raises(DeliveryError) as caught:
            await DingTalkRobot(http, url="http://127.0.0.1:port/robot/send", access_token="t",
                                secret=None).send_text("x")
        assert caught.value.kind == "network"


async def test_one_group_failing_in_an_unexpected_way_does_not_repeat_the_others_post(app, groups):
    """It used to roll the job back: the outbox sweep handed it over again and WeCom's group got the alert
    every minute, for ever."""
    wecom, _, channels = groups
    channels = Channels(http=channels.http, redis=channels.redis, settings=channels.settings.model_copy(
        update={"ops_dingtalk_url": "http://127.0.0.1:99999/robot/send"}))  # OverflowError inside the socket layer
    async with unit_of_work(app.state.sessions) as session:
        await raise_alert(session, "outbox_backlog", "120 follow-on jobs late", NOW, timedelta(minutes=30))
    assert await deliver_due(app, channels, NOW) == ["partly_sent"]
    assert await deliver_due(app, channels, NOW + timedelta(minutes=1)) == ["retry"]  # DingTalk only, again
    assert len(wecom.robot_messages) == 1
