"""A fake WeCom (企业微信) server speaking the documented protocol (../shared/platform-apis.md).

Errors are HTTP 200 with a non-zero errcode and the real errmsg suffix ("…, hint: [..], from ip: x.x.x.x,
more info at …"). Scriptable per test: `fake.refuse_ip = True` answers 60020 from now on (the 14:23
outage); `fake.invalidate_tokens()` makes issued tokens answer 40014; `fake.busy = n` answers -1 n times;
`fake.rate_limited = True` answers 45009; `fake.http_403 = True` answers a bare HTTP 403. Like WeCom, with
`enable_duplicate_check` an identical message to the same people within the interval is accepted but not
delivered again (`duplicates_dropped` counts them).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

CALLER_IP = "203.0.113.9"


def _error(code: int, text: str) -> JSONResponse:
    hint = f"[{int(time.time())}_{secrets.token_hex(4)}]"
    return JSONResponse({"errcode": code, "errmsg": f"{text}, hint: {hint}, from ip: {CALLER_IP}, "
                         f"more info at https://open.work.weixin.qq.com/devtool/query?e={code}"})


@dataclass
class FakeWeCom:
    corp_id: str = "ww-test-corp"
    secret: str = "wecom-secret"
    agent_id: int = 1000002
    users: set[str] = field(default_factory=lambda: {"rep0", "rep1", "rep2", "manager"})
    unlicensed: set[str] = field(default_factory=set)  # members without 接口许可: listed, not delivered
    robot_keys: set[str] = field(default_factory=lambda: {"robot-key"})
    refuse_ip: bool = False
    http_403: bool = False
    rate_limited: bool = False
    busy: int = 0
    answer_after_seconds: float = 0.0  # a WeCom that hangs before answering message/send
    tokens: dict[str, float] = field(default_factory=dict)  # token → expires at
    messages: list[dict[str, Any]] = field(default_factory=list)
    robot_messages: list[dict[str, Any]] = field(default_factory=list)
    token_requests: int = 0
    recent: dict[str, float] = field(default_factory=dict)  # duplicate check: message fingerprint → sent at
    duplicates_dropped: int = 0

    def invalidate_tokens(self) -> None:
        self.tokens.clear()

    def expire_tokens(self) -> None:
        self.tokens = {t: 0.0 for t in self.tokens}

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/cgi-bin/gettoken", self._gettoken),
            Route("/cgi-bin/message/send", self._send, methods=["POST"]),
            Route("/cgi-bin/webhook/send", self._robot, methods=["POST"]),
            Route("/cgi-bin/agent/get", self._agent),
        ])

    async def _gettoken(self, request: Request):
        self.token_requests += 1
        if request.query_params.get("corpid") != self.corp_id or request.query_params.get("corpsecret") != self.secret:
            return _error(40001, "invalid credential")
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.time() + 7200
        return JSONResponse({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

    def _refusal(self) -> JSONResponse | PlainTextResponse | None:
        if self.http_403:
            return PlainTextResponse("Forbidden", status_code=403)
        if self.refuse_ip:
            return _error(60020, "not allow to access from your ip")
        if self.busy > 0:
            self.busy -= 1
            return _error(-1, "system busy")
        if self.rate_limited:
            return _error(45009, "api freq out of limit")
        return None

    async def _send(self, request: Request):
        if self.answer_after_seconds:
            await asyncio.sleep(self.answer_after_seconds)
        token = request.query_params.get("access_token", "")
        if token not in self.tokens:
            return _error(40014, "invalid access_token")
        if self.tokens[token] < time.time():
            return _error(42001, "access_token expired")
        refusal = self._refusal()
        if refusal is not None:
            return refusal
        try:
            body = json.loads(await request.body())
        except ClientDisconnect:  # the caller died mid-request (chaos kills workers): nothing was sent
            return PlainTextResponse("", status_code=499)
        if body.get("agentid") != self.agent_id:
            return _error(40056, "invalid agentid")
        content = json.dumps(body.get(body.get("msgtype", ""), {}), ensure_ascii=False).encode()
        msgtype = body.get("msgtype")
        if msgtype in ("text", "markdown") and len(body[msgtype].get("content", "").encode()) > 2048:
            return _error(45002, "content size out of limit")
        wanted = [u for u in body.get("touser", "").split("|") if u]
        invalid = [u for u in wanted if u not in self.users]
        if wanted and len(invalid) == len(wanted):
            return _error(81013, "user & party & tag all invalid")
        # enable_duplicate_check: the same message to the same people within the interval is not sent again
        fingerprint = json.dumps([body.get("touser"), msgtype, body.get(msgtype)], sort_keys=True, ensure_ascii=False)
        now = time.time()
        unlicensed = [u for u in wanted if u in self.unlicensed]
        if body.get("enable_duplicate_check") and now - self.recent.get(fingerprint, -1e12) < body.get(
                "duplicate_check_interval", 1800):
            self.duplicates_dropped += 1
        else:
            self.recent[fingerprint] = now
            if any(u not in invalid and u not in unlicensed for u in wanted):  # someone can read it
                self.messages.append(body)
        return JSONResponse({"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid), "invalidparty": "",
                             "invalidtag": "", "unlicenseduser": "|".join(unlicensed), "msgid": secrets.token_hex(8),
                             "response_code": "", "_bytes": len(content)})

    async def _agent(self, request: Request):
        token = request.query_params.get("access_token", "")
        if token not in self.tokens:
            return _error(40014, "invalid access_token")
        refusal = self._refusal()
        if refusal is not None:
            return refusal
        return JSONResponse({"errcode": 0, "errmsg": "ok", "agentid": self.agent_id, "name": "leadflow",
                             "close": 0, "allow_userinfos": {"user": [{"userid": u} for u in sorted(self.users)]}})

    async def _robot(self, request: Request):
        if request.query_params.get("key") not in self.robot_keys:
            return _error(93000, "invalid webhook url")
        # Group robots are not apps: the app's trusted-IP list does not apply to them.
        if self.busy > 0:
            self.busy -= 1
            return _error(-1, "system busy")
        body = json.loads(await request.body())
        if body.get("msgtype") == "markdown" and len(body["markdown"]["content"].encode()) > 4096:
            return _error(40058, "markdown.content exceed max length 4096")
        self.robot_messages.append(body)
        return JSONResponse({"errcode": 0, "errmsg": "ok"})
