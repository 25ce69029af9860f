"""A fake DingTalk custom robot: checks the signature and timestamp like the real one (errcode 310000)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class FakeDingTalk:
    access_token: str = "ding-token"
    secret: str = "SECtest-secret"
    messages: list[dict[str, Any]] = field(default_factory=list)
    sent_this_minute: int = 0

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/robot/send", self._send, methods=["POST"])])

    async def _send(self, request: Request):
        q = request.query_params
        if q.get("access_token") != self.access_token:
            return JSONResponse({"errcode": 300001, "errmsg": "token is not exist"})
        try:
            timestamp = int(q.get("timestamp", ""))
        except ValueError:
            return JSONResponse({"errcode": 310000, "errmsg": "invalid timestamp"})
        if abs(time.time() * 1000 - timestamp) > 3600 * 1000:
            return JSONResponse({"errcode": 310000, "errmsg": "invalid timestamp"})
        expected = base64.b64encode(hmac.new(self.secret.encode(), f"{timestamp}\n{self.secret}".encode(),
                                             hashlib.sha256).digest()).decode()
        if q.get("sign") != expected:  # starlette has already url-decoded it
            return JSONResponse({"errcode": 310000, "errmsg": "sign not match"})
        self.sent_this_minute += 1
        if self.sent_this_minute > 20:
            return JSONResponse({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
        self.messages.append(json.loads(await request.body()))
        return JSONResponse({"errcode": 0, "errmsg": "ok"})
