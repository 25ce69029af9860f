"""Growth benchmark: intake latency with 10 k and with 1 M leads already stored, side by side.

Seeds `leads` and `submissions` with COPY (asyncpg copy_records_to_table), then drives the API (no worker,
to measure intake alone) with wrk at 64 connections for each size and prints req/s, p50, p95, p99.

    python bench/growth.py [--small 10000] [--large 1000000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

warnings.filterwarnings("ignore", module="platformdirs")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from app.embedded import EmbeddedStack  # noqa: E402
from app.migrate import upgrade_to_head  # noqa: E402
from bench.intake import UVICORN, Server, configure_service, free_port, parse_wrk  # noqa: E402


async def seed(dsn: str, upto: int) -> int:
    """Add historical leads (and their submissions) until `upto` leads are stored."""
    conn = await asyncpg.connect(dsn)
    try:
        have = await conn.fetchval("SELECT count(*) FROM leads")
        source = await conn.fetchval("SELECT id FROM sources WHERE key = 'bench'")
        start = datetime.now(UTC) - timedelta(days=400)  # outside the duplicate window: no merges
        batch = 50_000
        for offset in range(have, upto, batch):
            n = min(batch, upto - offset)
            leads, subs = [], []
            for i in range(offset, offset + n):
                lead_id, at = uuid.uuid4(), start + timedelta(seconds=i)
                number = f"HX-{at:%Y%m%d}-{i:07d}"
                leads.append((lead_id, number, source, "generic", "lost", f"历史{i}", f"+86137{i % 10**8:08d}",
                              "{}", 1, at, at, at, 0))
                body = f'{{"n":{i}}}'.encode()
                subs.append((uuid.uuid4(), source, at, "application/json", body, False,
                             hashlib.sha256(body).hexdigest(), "{}", "accepted", "[]", "[]", lead_id, number))
            await conn.copy_records_to_table(
                "leads", records=leads, columns=["id", "lead_number", "source_id", "channel", "status", "name",
                                                 "phone_e164", "attributes", "inquiry_count", "created_at",
                                                 "updated_at", "last_inquiry_at", "assignment_attempts"])
            await conn.copy_records_to_table(
                "submissions", records=subs, columns=["id", "source_id", "received_at", "content_type", "raw_body",
                                                      "body_truncated", "body_sha256", "headers", "outcome",
                                                      "reasons", "mapping_log", "lead_id", "answered_lead_number"])
        await conn.execute("ANALYZE leads; ANALYZE submissions")
        return await conn.fetchval("SELECT count(*) FROM leads")
    finally:
        await conn.close()


def measure(url: str, seconds: int, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BENCH_OUT": str(out)}
    text = subprocess.run(["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", "-s",
                           str(ROOT / "bench/intake.lua"), url], env=env, capture_output=True, text=True,
                          check=True).stdout
    figures = parse_wrk(text)
    figures["p95"] = int(re.search(r"p95_us=(\d+)", text).group(1)) / 1000
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    stack = EmbeddedStack(ROOT / ".leadflow" / "bench", redis_persist=False)
    stack.postgres.start()
    db_url = stack.postgres.create_database("growth_bench", drop_first=True)
    redis_url = stack.redis.start()
    dsn = db_url.replace("+asyncpg", "")
    upgrade_to_head(db_url)
    work = Path(tempfile.mkdtemp(prefix="leadflow-growth-"))
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_url, "LEADFLOW_ADMIN_TOKEN": "bench",
           "PYTHONPATH": str(ROOT), "LOG_LEVEL": "INFO"}
    api = Server("leadflow", [sys.executable, "-m", "uvicorn", "app.main:app_from_env", "--factory", "--port",
                              str(port), *UVICORN], env, port, work / "api.log")
    rows = []
    try:
        api.start()
        configure_service(f"http://127.0.0.1:{port}")
        for size in (args.small, args.large):
            stored = asyncio.run(seed(dsn, size))
            figures = measure(f"http://127.0.0.1:{port}/v1/intake/bench", args.seconds, work / str(size))
            rows.append((stored, figures))
            print(f"{stored:>9} stored: {figures['rps']:6.0f} req/s  p50 {figures['p50']:5.1f} ms  "
                  f"p95 {figures['p95']:6.1f} ms  p99 {figures['p99']:6.1f} ms", flush=True)
    finally:
        api.stop()
        stack.stop()
    (small, a), (large, b) = rows
    print(f"\np95 at {large:,} stored vs {small:,}: {b['p95'] / a['p95']:.2f}x "
          f"(req/s {b['rps'] / a['rps']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
