"""R3.2: deliver one owed notification, in its own job, retried with backoff; assignment never waits.

A delivered push writes `send_to_wx_success` to the lead's audit log and sets its push timestamp; a failed
one writes the classified error (for an IP refusal: which IP to add where). The platform call happens while
the notification row is locked, so two workers never send it twice; if a worker dies between the call and
the commit, the resend is caught by WeCom's own duplicate check (enable_duplicate_check, 30 minutes).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import structlog
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.alerts.service import raise_alert, resolve_alert
from app.domain.assignment.models import Notification
from app.domain.leads import audit
from app.domain.leads.models import Lead
from app.domain.notify.configs import live_configs, pick_config
from app.domain.notify.errors import DeliveryError, explain_ip_block
from app.domain.notify.preferences import wants
from app.domain.notify.wecom import WeComApp, WeComRobot
from app.domain.outbox.models import OutboxMessage
from app.domain.people.models import Team, User
from app.settings import Settings

log = structlog.get_logger(__name__)


@dataclass
class Channels:
    http: httpx.AsyncClient
    redis: Redis
    settings: Settings

    def wecom_app(self, config: dict | None = None) -> WeComApp | None:
        """The WeCom app from a versioned config (R3.6), else from settings; None when neither is complete."""
        s = self.settings
        if config is not None:
            return WeComApp(self.http, self.redis, base_url=config.get("base_url") or s.wecom_base_url,
                            corp_id=config["corp_id"], secret=config["secret"], agent_id=int(config["agent_id"]))
        if not (s.wecom_corp_id and s.wecom_secret and s.wecom_agent_id):
            return None
        return WeComApp(self.http, self.redis, base_url=s.wecom_base_url, corp_id=s.wecom_corp_id,
                        secret=s.wecom_secret.get_secret_value(), agent_id=s.wecom_agent_id)

    async def live_wecom_app(self, session: AsyncSession) -> tuple[WeComApp | None, dict]:
        """The app a delivery uses now (canary for a share, else full, else settings) and its config."""
        row = await pick_config(session, "wecom_app", self.settings.canary_share)
        config = row.config if row is not None else {}
        return self.wecom_app(config if row is not None else None), config | (
            {"version": row.version, "stage": row.stage} if row is not None else {})

    async def probe_config(self, config: dict) -> DeliveryError | None:
        """Probe one candidate config (sandbox/canary check before promotion)."""
        try:
            app = self.wecom_app(config)
            assert app is not None
            await app.probe()
        except DeliveryError as error:
            return error
        except (KeyError, ValueError, AssertionError) as error:
            return DeliveryError("wecom", "invalid_secret", None, f"incomplete config: {error}")
        return None

    def team_robot(self, key: str) -> WeComRobot:
        return WeComRobot(self.http, base_url=self.settings.wecom_base_url, key=key)


async def egress_list(session: AsyncSession, settings: Settings) -> list[str]:
    """Our egress IPs as configured: the live WeCom config's list (when its IP check is on), else settings."""
    full, _ = await live_configs(session, "wecom_app")
    if full is not None and full.config.get("ip_check_enabled", True) and full.config.get("egress_ips"):
        return list(full.config["egress_ips"])
    return settings.egress_ips


def render(notification: Notification, lead: Lead | None, tz: ZoneInfo) -> str:
    p = notification.payload
    if notification.kind == "lead_assigned" and lead is not None:
        due = f"，请在 {lead.claim_due_at.astimezone(tz):%m-%d %H:%M} 前认领" if lead.claim_due_at else ""
        return f"新线索 {lead.lead_number} 分配给你：{lead.name}（{lead.channel}）{due}"
    if notification.kind == "assignment_failed":
        why = p.get("why", {})
        reasons = ", ".join(sorted({c.get("reason", "?") for c in why.get("candidates", [])})) or why.get("reason")
        return f"线索 {p.get('lead_id')} 连续 {why.get('attempt')} 次分配失败（{reasons}），已建工单，请处理"
    if notification.kind == "todo_overdue":
        return _todo_overdue(p, tz)
    return f"{notification.kind}: {p}"


def _todo_overdue(p: dict, tz: ZoneInfo) -> str:
    due = datetime.fromisoformat(p["claim_due_at"]).astimezone(tz) if p.get("claim_due_at") else None
    when = f" {due:%m-%d %H:%M} " if due else ""
    if p.get("new_assignee"):
        moved = f"已转给 {p['new_assignee']}"
    elif p.get("outcome") == "waiting_window":
        moved = "已回到待分配，规则时段开放后再分"
    else:
        moved = "暂无其他人可接，已回到待分配"
    if p.get("to") == "manager":
        return f"{p.get('lapsed_user')} 未在{when}前认领线索 {p.get('lead_id')}（{p.get('name')}），{moved}"
    return f"线索 {p.get('lead_id')}（{p.get('name')}）未在{when}前认领，已超时，{moved}"


async def deliver_notification(
    session: AsyncSession, outbox_id: uuid.UUID, now: datetime, channels: Channels
) -> str:
    """Process one `deliver_notification` outbox row exactly once. Returns what happened."""
    row = await session.scalar(select(OutboxMessage).where(OutboxMessage.id == outbox_id).with_for_update())
    if row is None or row.processed_at is not None:
        return "already_processed"
    row.processed_at = now
    notification = await session.get(Notification, uuid.UUID(row.payload["notification_id"]), with_for_update=True)
    if notification is None or notification.status != "pending":
        return "not_pending"
    user = await session.get(User, notification.user_id)
    lead = await session.get(Lead, notification.lead_id) if notification.lead_id else None
    assert user is not None
    if not wants(notification.kind, user.notify_kinds):
        return _settle(session, notification, lead, now, "suppressed", "skipped", "preference")
    if notification.kind == "lead_assigned" and lead is not None and not _still_theirs(lead, notification.user_id):
        # Retried past a reassignment (a WeCom outage longer than the claim SLA): the lead is someone else's
        # now, and "assigned to you, claim by …" would send this rep after a lead they can no longer take.
        return _settle(session, notification, lead, now, "superseded", "skipped", "no_longer_assignee",
                       detail={"lead_status": lead.status, "assignee_id": str(lead.assignee_id)})
    try:
        sent = await _send(session, channels, notification, user, lead)
    except DeliveryError as error:
        return await _failed(session, notification, lead, now, channels.settings, error)
    if sent is None:
        return _settle(session, notification, lead, now, "undeliverable", "skipped", "no_channel_or_address")
    notification.sent_at = now
    if sent["channel"] == "wecom_app":  # a group robot is not subject to the app's trusted IPs: proves nothing
        await resolve_alert(session, "wecom:ip_not_allowed", now, "an app message went through again")
        await resolve_alert(session, _recipient_alert_key(notification.user_id), now, "reached again")
    if lead is not None and notification.kind == "lead_assigned" and lead.pushed_at is None:
        lead.pushed_at = now
    return _settle(session, notification, lead, now, "sent", "success", "send_to_wx_success", detail=sent)


def _recipient_alert_key(user_id: uuid.UUID) -> str:
    return f"wecom:recipients_invalid:{user_id}"


def _still_theirs(lead: Lead, user_id: uuid.UUID) -> bool:
    return lead.assignee_id == user_id and lead.status in ("assigned", "claimed")


async def _send(session: AsyncSession, channels: Channels, notification: Notification, user: User,
                lead: Lead | None) -> dict | None:
    text = render(notification, lead, channels.settings.tz)
    team_id = notification.payload.get("team_id") or (lead.team_id if lead is not None else None)
    if notification.kind == "assignment_failed" and team_id is not None:
        team = await session.get(Team, uuid.UUID(str(team_id)))
        if team is not None and team.wecom_robot_key:
            await channels.team_robot(team.wecom_robot_key).send_text(
                text, mention_userids=[user.wecom_userid] if user.wecom_userid else ["@all"])
            return {"channel": "wecom_robot", "team": team.name}
    app, config = await channels.live_wecom_app(session)
    if app is None or not user.wecom_userid:
        return None
    answer = await app.send([user.wecom_userid], "text", {"content": text})
    for field, what in (("invaliduser", "is not a member the app can reach"),
                        ("unlicenseduser", "has no WeCom licence (接口许可)")):
        if user.wecom_userid in (answer.get(field) or "").split("|"):
            # errcode 0, yet nobody got it: WeCom names the recipient instead of failing the call
            raise DeliveryError("wecom", "recipients_invalid", 81013,
                                f"{user.name}'s WeCom id {user.wecom_userid!r} {what} ({field})")
    return {"channel": "wecom_app", "msgid": answer.get("msgid"), "config_version": config.get("version")}


def _settle(session: AsyncSession, notification: Notification, lead: Lead | None, now: datetime, status: str,
            result: str, reason: str, detail: dict | None = None) -> str:
    notification.status = status
    audit.record(session, lead_id=lead.id if lead else None, action="notify", result=result, at=now, reason=reason,
                 detail={"kind": notification.kind, "user_id": str(notification.user_id), **(detail or {})})
    return status


async def _failed(session: AsyncSession, notification: Notification, lead: Lead | None, now: datetime,
                  settings: Settings, error: DeliveryError) -> str:
    notification.attempts += 1
    notification.error_kind, notification.last_error = error.kind, str(error)[:1000]
    detail = {"kind": notification.kind, "user_id": str(notification.user_id), "channel": error.channel,
              "errcode": error.errcode, "attempt": notification.attempts}
    if error.kind == "ip_not_allowed":
        detail |= {"ip": error.ip, "fix": explain_ip_block(error, await egress_list(session, settings))}
        log.error("integration_ip_not_allowed", channel=error.channel, ip=error.ip, fix=detail["fix"])
    if not error.is_retryable or error.kind == "ip_not_allowed":  # needs a person: say so on the first failure
        key = _recipient_alert_key(notification.user_id) if error.kind == "recipients_invalid" \
            else f"{error.channel}:{error.kind}"  # one alert per unreachable person, not one for all of them
        await raise_alert(session, key, detail.get("fix") or str(error), now,
                          timedelta(seconds=settings.alert_cooldown_seconds), severity="critical",
                          detail={"errcode": error.errcode, "ip": error.ip})
    audit.record(session, lead_id=lead.id if lead else None, action="notify", result="failed", at=now,
                 reason=error.kind, detail=detail)
    if not error.is_retryable or notification.attempts >= settings.notify_max_attempts:
        notification.status = "failed"
        return "failed"
    delay = min(settings.notify_retry_max_seconds,
                settings.notify_retry_base_seconds * 2 ** (notification.attempts - 1))
    session.add(OutboxMessage(job="deliver_notification", payload={"notification_id": str(notification.id)},
                              lead_id=notification.lead_id, created_at=now, not_before=now + timedelta(seconds=delay)))
    return "retry"
