"""Assignment benchmark: a burst of N leads (default 10,000) over W worker processes (default 2).

Starts embedded PostgreSQL and Redis under .leadflow/bench, creates a team of reps and a round-robin rule,
writes the burst straight into `leads` + `outbox` (as intake would have), then starts the workers and waits
until every outbox row is processed. Prints leads/s and trigger→match p50/p95/max, and checks that no lead
was assigned twice and no rep went over capacity.

    python bench/assign.py [--leads 10000] [--workers 2] [--reps 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", module="platformdirs")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from app.embedded import EmbeddedStack  # noqa: E402
from app.migrate import upgrade_to_head  # noqa: E402

SETUP = """
INSERT INTO sources (id, key, name, kind, enabled, field_mapping, options, auth_mode, auth_settings, created_at,
                     updated_at)
VALUES (gen_random_uuid(), 'bench', 'bench', 'generic', true, '{}', '{}', 'none', '{}', now(), now());
INSERT INTO roles (id, name, permissions, created_at) VALUES (gen_random_uuid(), 'sales', '{lead.claim}', now());
INSERT INTO teams (id, name, created_at) VALUES (gen_random_uuid(), 'bench', now());
"""
REPS = """
INSERT INTO users (id, name, kind, role_id, is_active, on_duty, capacity, created_at)
SELECT gen_random_uuid(), 'rep' || g, 'sales', (SELECT id FROM roles), true, true, $1, now()
FROM generate_series(1, $2) g;
"""
MEMBERS_AND_RULE = """
INSERT INTO team_members (team_id, user_id, tier) SELECT (SELECT id FROM teams), id, 'primary' FROM users;
INSERT INTO assignment_rules (id, name, team_id, strategy, auto_claim, claim_sla_minutes, priority, enabled,
                              created_at, updated_at)
VALUES (gen_random_uuid(), 'bench', (SELECT id FROM teams), 'round_robin', false, 600, 1, true, now(), now());
"""
BURST = """
WITH l AS (
    INSERT INTO leads (id, lead_number, source_id, channel, status, name, phone_e164, attributes, inquiry_count,
                       created_at, updated_at, last_inquiry_at, triggered_at, assignment_attempts)
    SELECT gen_random_uuid(), 'BN-' || lpad(g::text, 6, '0'), (SELECT id FROM sources), 'generic', 'new',
           'bench' || g, '+86139' || lpad(g::text, 8, '0'), '{}', 1, now(), now(), now(), now(), 0
    FROM generate_series(1, $1) g
    RETURNING id
)
INSERT INTO outbox (id, job, payload, lead_id, created_at, enqueue_attempts)
SELECT gen_random_uuid(), 'assign_lead', jsonb_build_object('lead_id', id), id, now(), 0 FROM l;
"""
STATS = """
SELECT count(*) FILTER (WHERE matched_at IS NOT NULL),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM matched_at - triggered_at) * 1000),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM matched_at - triggered_at) * 1000),
       max(extract(epoch FROM matched_at - triggered_at) * 1000),
       extract(epoch FROM max(matched_at) - min(matched_at))
FROM leads
"""
CHECKS = """
SELECT (SELECT count(*) FROM (SELECT lead_id FROM audit_log WHERE action = 'assign' AND action_result = 'success'
                              GROUP BY lead_id HAVING count(*) > 1) d) AS double_assigned,
       (SELECT count(*) FROM (SELECT assignee_id FROM leads WHERE status IN ('assigned', 'claimed')
                              GROUP BY assignee_id HAVING count(*) > $1) o) AS over_capacity,
       (SELECT max(n) - min(n) FROM (SELECT count(*) n FROM leads WHERE assignee_id IS NOT NULL
                                     GROUP BY assignee_id) c) AS spread
"""


async def prepare(dsn: str, leads: int, reps: int, capacity: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SETUP)
        await conn.execute(REPS, capacity, reps)
        await conn.execute(MEMBERS_AND_RULE)
        await conn.execute(BURST, leads)
    finally:
        await conn.close()


async def wait_done(dsn: str, leads: int, limit_s: float) -> float:
    conn = await asyncpg.connect(dsn)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < limit_s:
            left = await conn.fetchval("SELECT count(*) FROM outbox WHERE processed_at IS NULL")
            if left == 0:
                return time.perf_counter() - started
            await asyncio.sleep(0.25)
        raise TimeoutError(f"outbox not drained after {limit_s}s")
    finally:
        await conn.close()


async def report(dsn: str, capacity: int) -> tuple[tuple, tuple]:
    conn = await asyncpg.connect(dsn)
    try:
        return tuple(await conn.fetchrow(STATS)), tuple(await conn.fetchrow(CHECKS, capacity))
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    capacity = args.leads  # capacity is not what this measures
    stack = EmbeddedStack(ROOT / ".leadflow" / "bench", redis_persist=False)
    stack.postgres.start()
    db_url = stack.postgres.create_database("assign_bench", drop_first=True)
    redis_url = stack.redis.start()
    dsn = db_url.replace("+asyncpg", "")
    procs: list[subprocess.Popen] = []
    try:
        upgrade_to_head(db_url)
        asyncio.run(prepare(dsn, args.leads, args.reps, capacity))
        env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING",
               "PYTHONPATH": str(ROOT)}
        procs = [subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(args.workers)]
        elapsed = asyncio.run(wait_done(dsn, args.leads, args.timeout))
        (matched, p50, p95, worst, span), (double, over, spread) = asyncio.run(report(dsn, capacity))
        print(f"{args.leads} leads, {args.workers} workers, {args.reps} reps (round robin)")
        print(f"drained in {elapsed:.1f} s (incl. worker start-up): {args.leads / elapsed:.0f} leads/s; "
              f"first to last match {span:.1f} s: {matched / span if span else float('nan'):.0f} leads/s")
        print(f"trigger->match p50 {p50 / 1000:.2f} s  p95 {p95 / 1000:.2f} s  max {worst / 1000:.2f} s "
              f"(the whole burst is triggered at once, so this is queueing time)")
        print(f"matched {matched}; assigned twice: {double}; reps over capacity: {over}; "
              f"round-robin spread (max - min per rep): {spread}")
        return 0 if (matched == args.leads and double == 0 and over == 0) else 1
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
