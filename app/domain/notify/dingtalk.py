"""R3.1: DingTalk custom robot with the timestamp + secret signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse

import httpx

from app.domain.notify.errors import DeliveryError, classify_dingtalk_error


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """urlencode(base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")))."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


class DingTalkRobot:
    def __init__(self, http: httpx.AsyncClient, *, url: str, access_token: str, secret: str | None) -> None:
        self.http, self.url, self.access_token, self.secret = http, url, access_token, secret

    async def send_text(self, content: str, at_mobiles: list[str] | None = None) -> dict:
        return await self._post({"msgtype": "text", "text": {"content": content},
                                 "at": {"atMobiles": at_mobiles or [], "isAtAll": False}})

    async def send_markdown(self, title: str, text: str) -> dict:
        return await self._post({"msgtype": "markdown", "markdown": {"title": title, "text": text}})

    async def _post(self, body: dict) -> dict:
        query = f"access_token={urllib.parse.quote_plus(self.access_token)}"
        if self.secret:
            timestamp = int(time.time() * 1000)
            query += f"&timestamp={timestamp}&sign={dingtalk_sign(self.secret, timestamp)}"
        try:
            response = await self.http.post(f"{self.url}?{query}", json=body)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise DeliveryError("dingtalk", "network", None, f"{type(error).__name__}: {error}") from error
        if response.status_code != 200:
            raise classify_dingtalk_error(None, response.text[:200], response.status_code)
        try:
            data = response.json()
        except ValueError as error:  # a proxy's or gateway's HTML page, answered 200
            raise classify_dingtalk_error(None, response.text[:200], response.status_code) from error
        if data.get("errcode", 0) != 0:
            raise classify_dingtalk_error(data.get("errcode"), data.get("errmsg", ""))
        return data
