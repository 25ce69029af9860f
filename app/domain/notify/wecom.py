"""R3.1: WeCom application messages (cached access token) and group robots."""

from __future__ import annotations

import hashlib

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.domain.notify.errors import DeliveryError, classify_wecom_error

TOKEN_MARGIN_SECONDS = 300  # refresh a little before WeCom says the token expires


class WeComApp:
    """One self-built app: `corp_id` + `secret` + `agent_id`. The token is shared through Redis."""

    def __init__(self, http: httpx.AsyncClient, redis: Redis, *, base_url: str, corp_id: str, secret: str,
                 agent_id: int) -> None:
        self.http, self.redis = http, redis
        self.base_url = base_url.rstrip("/") + "/"
        self.corp_id, self.secret, self.agent_id = corp_id, secret, agent_id
        # the secret's fingerprint is part of the key: a rotated or candidate secret never reuses a token
        fingerprint = hashlib.sha256(secret.encode()).hexdigest()[:12]
        self._cache_key = f"leadflow:wecom:token:{corp_id}:{agent_id}:{fingerprint}"

    async def access_token(self, *, refresh: bool = False) -> str:
        """The cached token, or a new one from gettoken (cached until shortly before it expires)."""
        if not refresh:
            cached = await self._cached()
            if cached:
                return cached
        data = await self._call("GET", "gettoken", params={"corpid": self.corp_id, "corpsecret": self.secret})
        token, expires_in = data["access_token"], int(data.get("expires_in", 7200))
        try:
            await self.redis.set(self._cache_key, token, ex=max(60, expires_in - TOKEN_MARGIN_SECONDS))
        except (RedisError, OSError):
            pass  # works without the cache, only slower
        return token

    async def _cached(self) -> str | None:
        try:
            value = await self.redis.get(self._cache_key)
        except (RedisError, OSError):
            return None
        return value.decode() if isinstance(value, bytes) else value

    async def send(self, touser: list[str], msgtype: str, payload: dict) -> dict:
        """message/send. On an invalid or expired token: fetch a new one once and repeat once (never loop)."""
        body = {"touser": "|".join(touser), "toparty": "", "totag": "", "msgtype": msgtype, "agentid": self.agent_id,
                msgtype: payload, "safe": 0, "enable_duplicate_check": 1, "duplicate_check_interval": 1800}
        token = await self.access_token()
        try:
            return await self._call("POST", "message/send", params={"access_token": token}, json=body)
        except DeliveryError as error:
            if error.kind != "token_invalid":
                raise
        token = await self.access_token(refresh=True)
        return await self._call("POST", "message/send", params={"access_token": token}, json=body)

    async def probe(self) -> dict:
        """A fresh token (proves the secret), then a harmless business call (agent/get): gettoken alone is not
        enough, since from an untrusted IP it still succeeds and only business calls answer 60020."""
        token = await self.access_token(refresh=True)
        return await self._call("GET", "agent/get", params={"access_token": token, "agentid": self.agent_id})

    async def _call(self, method: str, path: str, **kwargs) -> dict:
        try:
            response = await self.http.request(method, self.base_url + path, **kwargs)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise DeliveryError("wecom", "network", None, f"{type(error).__name__}: {error}") from error
        return parse_wecom_answer(response)


class WeComRobot:
    """A group robot (webhook/send?key=…): text with @-mentions, or markdown."""

    def __init__(self, http: httpx.AsyncClient, *, base_url: str, key: str) -> None:
        self.http, self.url, self.key = http, base_url.rstrip("/") + "/webhook/send", key

    async def send_text(self, content: str, mention_userids: list[str] | None = None) -> dict:
        body = {"msgtype": "text", "text": {"content": content, "mentioned_list": mention_userids or []}}
        return await self._post(body)

    async def send_markdown(self, content: str) -> dict:
        return await self._post({"msgtype": "markdown", "markdown": {"content": content}})

    async def _post(self, body: dict) -> dict:
        try:
            response = await self.http.post(self.url, params={"key": self.key}, json=body)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise DeliveryError("wecom", "network", None, f"{type(error).__name__}: {error}") from error
        return parse_wecom_answer(response)


def parse_wecom_answer(response: httpx.Response) -> dict:
    """WeCom answers errors as HTTP 200 with a non-zero errcode; a 403 is the IP block seen in captures."""
    if response.status_code != 200:
        raise classify_wecom_error(None, response.text[:200], response.status_code)
    try:
        data = response.json()
    except ValueError as error:
        raise classify_wecom_error(None, response.text[:200]) from error
    if data.get("errcode", 0) != 0:
        raise classify_wecom_error(data.get("errcode"), data.get("errmsg", ""))
    return data
