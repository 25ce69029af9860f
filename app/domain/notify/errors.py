"""R3.3: one classification of every platform failure, so alerts say what is wrong and what to do."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_FROM_IP = re.compile(r"from ip:\s*([0-9a-fA-F:.]+)")

# kind → (retry?, what it means)
KINDS = {
    "ip_not_allowed": (True, "the platform refuses calls from this server's IP"),
    "token_invalid": (True, "access token invalid or expired"),
    "rate_limited": (True, "platform rate limit hit"),
    "system_busy": (True, "platform busy"),
    "network": (True, "platform unreachable"),
    "http_error": (True, "unexpected HTTP answer"),
    "invalid_secret": (False, "the app secret is wrong"),
    "not_permitted": (False, "the app lacks permission for this call or member"),
    "recipients_invalid": (False, "no recipient is a valid user of the app"),
    "invalid_webhook": (False, "the robot webhook key is wrong"),
    "signature_rejected": (False, "the robot rejected our signature, keyword or IP"),
    "unknown": (True, "unrecognised error"),
}
_WECOM = {-1: "system_busy", 40001: "invalid_secret", 40014: "token_invalid", 42001: "token_invalid",
          45009: "rate_limited", 48002: "not_permitted", 60011: "not_permitted", 60020: "ip_not_allowed",
          81013: "recipients_invalid", 93000: "invalid_webhook"}
_DINGTALK = {130101: "rate_limited", 310000: "signature_rejected", 300001: "invalid_webhook"}


@dataclass
class DeliveryError(Exception):
    """A failed platform call, classified. `ip` is the caller IP the platform reported, when it did."""

    channel: str
    kind: str
    errcode: int | None = None
    errmsg: str = ""
    ip: str | None = None

    def __post_init__(self) -> None:
        Exception.__init__(self, f"{self.channel} {self.kind} ({self.errcode}): {self.errmsg[:200]}")

    @property
    def is_retryable(self) -> bool:
        return KINDS.get(self.kind, (True, ""))[0]


def classify_wecom_error(errcode: int | None, errmsg: str = "", http_status: int = 200) -> DeliveryError:
    """Branch on errcode (never on errmsg), except to read the `from ip:` part; HTTP 403 counts as 60020."""
    if http_status == 403:
        kind = "ip_not_allowed"
    elif errcode is None:
        kind = "http_error"
    else:
        kind = _WECOM.get(errcode, "unknown")
    match = _FROM_IP.search(errmsg or "")
    return DeliveryError("wecom", kind, errcode, errmsg, match.group(1) if match else None)


def classify_dingtalk_error(errcode: int | None, errmsg: str = "", http_status: int = 200) -> DeliveryError:
    kind = "http_error" if errcode is None else _DINGTALK.get(errcode, "unknown")
    ip = re.search(r"ip\s+([0-9a-fA-F:.]+)\s+not in whitelist", errmsg or "")
    if ip:
        kind = "ip_not_allowed"
    return DeliveryError("dingtalk", kind, errcode, errmsg, ip.group(1) if ip else None)


def explain_ip_block(error: DeliveryError, egress: list[str], app_name: str = "leadflow") -> str:
    """Plain words for ops: which IP to add where, and whether our configured egress list is out of date."""
    ip = error.ip
    where = ("WeCom admin console (企业微信管理后台) → 应用管理 → " + app_name + " → 企业可信IP"
             if error.channel == "wecom" else "DingTalk robot settings → 安全设置 → IP地址(段)")
    if ip is None:
        return (f"{error.channel} refused our call as coming from an untrusted IP (errcode {error.errcode}); "
                f"it did not say which. Add this server's egress IPs {egress or '(none configured)'} in {where}.")
    listed = _in_egress(ip, egress)
    state = ("it is in LEADFLOW_EGRESS_IPS, so the platform-side list is what is missing" if listed else
             "it is NOT in LEADFLOW_EGRESS_IPS: our egress changed, update that setting too")
    return f"{error.channel} refused our call from {ip} (errcode {error.errcode}). Add {ip} in {where}; {state}."


def _in_egress(ip: str, egress: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for entry in egress:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False
