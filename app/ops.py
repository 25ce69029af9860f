"""R7.3: ops verbs of the `leadflow` CLI — source status, replaying rejections, the integration probe."""

from __future__ import annotations

import asyncio
import csv
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from app.db import create_engine, create_sessionmaker, unit_of_work
from app.domain.alerts.probes import integration_briefs, run_probes
from app.domain.clock import SystemClock
from app.domain.errors import DomainError
from app.domain.intake.acceptance import Acceptor, create_intake_pool
from app.domain.intake.models import Submission
from app.domain.intake.service import IntakeContext
from app.domain.intake.submissions import replay_submission
from app.domain.notify.delivery import Channels
from app.domain.sources.cache import SourceCache
from app.domain.sources.service import get_source
from app.domain.sources.status import source_statuses
from app.queue import create_queue_client, worker_heartbeat_key
from app.settings import Settings, get_settings

console = Console()
T = TypeVar("T")


@asynccontextmanager
async def _context(settings: Settings) -> AsyncIterator[IntakeContext]:
    engine = create_engine(settings.require_database_url(), pool_size=2)
    sessions = create_sessionmaker(engine)
    pool = await create_intake_pool(settings.require_database_url(), max_size=2)
    redis = create_queue_client(settings)
    try:
        yield IntakeContext(sessions=sessions, acceptor=Acceptor(pool), redis=redis, sources=SourceCache(sessions, 0),
                            settings=settings, clock=SystemClock())
    finally:
        await redis.aclose()
        await pool.close()
        await engine.dispose()


def _run(action: Callable[[IntakeContext], Awaitable[T]]) -> T:
    async def go() -> T:
        async with _context(get_settings()) as ctx:
            return await action(ctx)

    return asyncio.run(go())


def sources_status(check: bool = typer.Option(False, help="exit 1 when a source is stale")) -> None:
    """Sync status per source (R1.8): last success, last failure and why, 24 h counts, stale."""
    async def load(ctx: IntakeContext) -> list[dict[str, Any]]:
        async with unit_of_work(ctx.sessions) as session:
            return await source_statuses(session, ctx.clock.now())

    rows = _run(load)
    table = Table("source", "kind", "enabled", "last success", "last failure", "24 h", "stale")
    for r in rows:
        reasons = ",".join(x.get("code", "?") for x in r["last_failure_reasons"][:3])
        counts = " ".join(f"{k}={v}" for k, v in sorted(r["counts_24h"].items())) or "-"
        table.add_row(r["key"], r["kind"], "yes" if r["enabled"] else "no", _when(r["last_success_at"]),
                      f"{_when(r['last_failure_at'])} {reasons}".strip(), counts,
                      "[red]STALE[/red]" if r["stale"] else "")
    console.print(table)
    if check and any(r["stale"] for r in rows):
        raise typer.Exit(1)


def replay(
    source: str = typer.Option(..., "--source", help="source key"),
    rejected: bool = typer.Option(True, "--rejected/--all-rejected", help="only those not yet replayed"),
    limit: int = typer.Option(500, help="at most this many"),
) -> None:
    """Replay rejected submissions of a source through its current mapping (R1.6)."""
    async def go(ctx: IntakeContext) -> list[tuple[str, str]]:
        async with unit_of_work(ctx.sessions) as session:
            src = await get_source(session, source)
            query = select(Submission.id).where(Submission.source_id == src.id, Submission.outcome == "rejected")
            if rejected:
                query = query.where(Submission.replayed_by_id.is_(None))
            ids = list(await session.scalars(query.order_by(Submission.received_at).limit(limit)))
        results = []
        for submission_id in ids:
            try:
                result = await replay_submission(ctx, submission_id)
                results.append((str(submission_id), f"{result.status} {result.lead_number}"))
            except DomainError as error:
                results.append((str(submission_id), f"refused: {error.extra.get('code') or error.code}"))
        return results

    results = _run(go)
    for submission_id, outcome in results:
        console.print(f"{submission_id}  {outcome}")
    ok = sum(1 for _, o in results if not o.startswith("refused"))
    console.print(f"replayed {len(results)}: {ok} accepted or merged, {len(results) - ok} still refused")


def probe() -> None:
    """Run the integration probe now and print the brief (R3.4)."""
    async def go(ctx: IntakeContext) -> list:
        async with httpx.AsyncClient(timeout=5) as http:
            channels = Channels(http=http, redis=ctx.redis, settings=ctx.settings)
            async with unit_of_work(ctx.sessions) as session:
                await run_probes(session, channels, ctx.clock.now(), force=True)
            async with unit_of_work(ctx.sessions) as session:
                return [(b.channel, b.ok, b.since, b.error_kind, b.detail) for b in await integration_briefs(session)]

    briefs = _run(go)
    if not briefs:
        console.print("no integration configured (set LEADFLOW_WECOM_* or propose a version)")
    for channel, ok, since, error_kind, detail in briefs:
        state = "[green]ok[/green]" if ok else f"[red]failing[/red] ({error_kind})"
        console.print(f"{channel}: {state} since {_when(since)}")
        if detail.get("fix"):
            console.print(f"  fix: {detail['fix']}")


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def doctor() -> None:
    """Check configuration and connectivity and say what to fix (exit 1 when something must be fixed)."""
    settings = get_settings()
    problems: list[str] = []
    advice: list[str] = []
    if not settings.database_url or not settings.redis_url:
        problems.append("DATABASE_URL and REDIS_URL must be set (or use `leadflow run` for embedded servers)")
    else:
        problems += asyncio.run(_connectivity(settings))
    if settings.admin_token is None:
        advice.append("LEADFLOW_ADMIN_TOKEN is not set: the admin API answers 401")
    wecom = [settings.wecom_corp_id, settings.wecom_agent_id, settings.wecom_secret]
    if any(wecom) and not all(wecom):
        problems.append("WeCom is half configured: set LEADFLOW_WECOM_CORP_ID, _AGENT_ID and _SECRET together")
    if all(wecom) and not settings.egress_ips:
        advice.append("LEADFLOW_EGRESS_IPS is empty: IP refusals (60020) cannot say whether our egress changed")
    if all(wecom) and settings.database_url and settings.redis_url and not problems:
        problems += asyncio.run(_allowlist(settings))
    if not (settings.ops_wecom_robot_key or settings.ops_dingtalk_token):
        advice.append("no ops channel (LEADFLOW_OPS_WECOM_ROBOT_KEY / LEADFLOW_OPS_DINGTALK_TOKEN): alerts are "
                      "only stored, nobody is told")
    for line in problems:
        console.print(f"[red]FIX[/red]  {line}")
    for line in advice:
        console.print(f"[yellow]NOTE[/yellow] {line}")
    if not problems:
        console.print("[green]ok[/green]: database, migrations, Redis and worker heartbeat checked")
    if problems:
        raise typer.Exit(1)


async def _allowlist(settings: Settings) -> list[str]:
    """Ask WeCom with a harmless business call whether it trusts our IP, and compare with the egress list."""
    from app.domain.notify.delivery import egress_list
    from app.domain.notify.errors import DeliveryError, explain_ip_block

    async with _context(settings) as ctx, httpx.AsyncClient(timeout=5) as http:
        app = Channels(http=http, redis=ctx.redis, settings=settings).wecom_app()
        try:
            await app.probe()
        except DeliveryError as error:
            if error.kind == "ip_not_allowed":
                async with unit_of_work(ctx.sessions) as session:
                    return [explain_ip_block(error, await egress_list(session, settings))]
            return [f"WeCom answers {error.kind} ({error.errcode}): {error.errmsg[:120]}"]
    return []


async def _connectivity(settings: Settings) -> list[str]:
    from app.domain.readiness import check_readiness

    engine = create_engine(settings.require_database_url(), pool_size=1)
    redis = create_queue_client(settings)
    try:
        report = await check_readiness(engine, redis, settings.worker_heartbeat_max_age_seconds,
                                       worker_heartbeat_key(settings.queue_name), detail=True)
    finally:
        await redis.aclose()
        await engine.dispose()
    return [f"{name}: {report['checks'][name].get('error', 'down')}" for name in report["down"]]


def import_leads(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help=".csv or .xlsx, a header row first"),
    source: str = typer.Option(..., "--source", help="the source whose mapping and options apply"),
) -> None:
    """Import leads from CSV/Excel with the intake's validation; rejected rows go to FILE.rejected.csv."""
    from rich.progress import Progress

    from app.domain.intake.imports import file_fingerprint, import_row, iter_failures, read_rows

    header, rows = read_rows(path)
    fingerprint = file_fingerprint(path)

    async def go(ctx: IntakeContext) -> list:
        async with unit_of_work(ctx.sessions) as session:
            src = await get_source(session, source)
        results = []
        with Progress(console=console) as progress:
            task = progress.add_task(f"importing {path.name}", total=len(rows))
            for number, row in enumerate(rows, start=2):  # row 1 is the header
                try:
                    results.append((number, row, await import_row(ctx, src, path, fingerprint, number, row)))
                except DomainError as error:
                    results.append((number, row, error))
                progress.advance(task)
        return results

    results = _run(go)
    statuses = Counter(r.status if not isinstance(r, DomainError) else "rejected" for _, _, r in results)
    failures = list(iter_failures(results))
    if failures:
        report = path.with_name(path.name + ".rejected.csv")
        with report.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["row", *header, "reason"], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(failures)
        console.print(f"rejected rows and why: {report}")
    console.print("imported: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
