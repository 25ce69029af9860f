"""One notifier interface for group channels; adding a channel (Feishu) is one module plus one line here."""

from __future__ import annotations

from typing import Protocol

import httpx

from app.domain.notify.dingtalk import DingTalkRobot
from app.domain.notify.wecom import WeComRobot
from app.settings import Settings


class GroupNotifier(Protocol):
    """Posts a text to a group. Raises DeliveryError (classified) when the platform refuses."""

    async def send_text(self, content: str, /) -> dict: ...


def ops_notifiers(settings: Settings, http: httpx.AsyncClient) -> list[GroupNotifier]:
    """The ops groups alerts go to, from settings; empty when none is configured."""
    notifiers: list[GroupNotifier] = []
    if settings.ops_wecom_robot_key:
        notifiers.append(WeComRobot(http, base_url=settings.wecom_base_url,
                                    key=settings.ops_wecom_robot_key.get_secret_value()))
    if settings.ops_dingtalk_token:
        secret = settings.ops_dingtalk_secret.get_secret_value() if settings.ops_dingtalk_secret else None
        notifiers.append(DingTalkRobot(http, url=settings.ops_dingtalk_url,
                                       access_token=settings.ops_dingtalk_token.get_secret_value(), secret=secret))
    return notifiers
