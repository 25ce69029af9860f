"""Intake benchmark: leadflow's full intake path vs a raw floor app, side by side, driven by wrk.

Starts embedded PostgreSQL and Redis under .leadflow/bench, then alternates rounds of the floor app
(Starlette + asyncpg, one INSERT per request) and the service (API + one arq worker), each under the same
uvicorn settings, at 64 connections. Prints req/s, p50 and p99 per round, the medians, the ratio, and
checks that every 2xx lead id wrk saw is in the database.

    python bench/intake.py [--seconds 10] [--rounds 3] [--connections 64]
Needs wrk (`apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", module="platformdirs")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.embedded import EmbeddedStack  # noqa: E402
from app.migrate import upgrade_to_head  # noqa: E402

UVICORN = ["--host", "127.0.0.1", "--no-access-log", "--log-level", "warning", "--loop", "uvloop", "--http",
           "httptools"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:
            time.sleep(0.2)
    raise TimeoutError(url)


def parse_wrk(output: str) -> dict[str, float]:
    def ms(value: str) -> float:
        number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()
        return float(number) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = ms(re.search(r"\s50%\s+(\S+)", output).group(1))
    p99 = ms(re.search(r"\s99%\s+(\S+)", output).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {"rps": rps, "p50": p50, "p99": p99, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else ""}


def warm_up(url: str, seconds: int, connections: int, out_dir: Path) -> None:
    """Unmeasured load first, for both servers alike: connection pools, prepared statements and caches fill."""
    if seconds > 0:
        run_wrk(url, seconds, connections, out_dir)


_RUNS = iter(range(10_000))


def run_wrk(url: str, seconds: int, connections: int, out_dir: Path) -> dict[str, float]:
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BENCH_OUT": str(out_dir), "BENCH_RUN": str(next(_RUNS))}
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(ROOT / "bench/intake.lua"), url]
    return parse_wrk(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout)


class Server:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.name, self.cmd, self.env, self.port, self.log = name, cmd, env, port, log
        self.procs: list[subprocess.Popen] = []

    def start(self, extra: list[list[str]] = ()) -> None:
        with open(self.log, "a") as log:
            for cmd in [self.cmd, *extra]:
                self.procs.append(subprocess.Popen(cmd, env=self.env, stdout=log, stderr=log, cwd=ROOT))
        wait_http(f"http://127.0.0.1:{self.port}/healthz" if self.name == "leadflow" else
                  f"http://127.0.0.1:{self.port}/nothing", 30) if self.name == "leadflow" else time.sleep(2)

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs = []


def configure_service(base: str) -> None:
    """A source, and a team of 20 reps with a round-robin rule, so the worker really assigns each lead."""
    def call(method: str, path: str, body: dict) -> dict:
        request = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode(),
                                         headers={"Authorization": "Bearer bench", "Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(request).read())

    call("POST", "/v1/sources", {"key": "bench", "name": "bench", "kind": "generic", "auth": {"mode": "none"}})
    role = call("POST", "/v1/roles", {"name": "sales", "permissions": ["lead.claim"]})["role"]["id"]
    reps = [call("POST", "/v1/users", {"name": f"rep{i}", "kind": "sales", "role_id": role,
                                       "capacity": 1_000_000})["user"]["id"] for i in range(20)]
    team = call("POST", "/v1/teams", {"name": "bench", "primary": reps})["team"]["id"]
    call("POST", "/v1/assignment/rules", {"name": "bench", "team_id": team})


async def stored_lead_numbers(db_url: str) -> set[str]:
    import asyncpg

    conn = await asyncpg.connect(db_url.replace("+asyncpg", ""))
    try:
        return {r[0] for r in await conn.fetch("SELECT lead_number FROM leads")}
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load before each round")
    parser.add_argument("--processes", type=int, default=1,
                        help="uvicorn --workers for both servers alike (default 1)")
    parser.add_argument("--no-worker", action="store_true",
                        help="measure the API alone (the worker also competes for this machine's 2 cores)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2

    data = ROOT / ".leadflow" / "bench"
    stack = EmbeddedStack(data, redis_persist=False)
    stack.postgres.start()
    db_url = stack.postgres.create_database("leadflow_bench", drop_first=True)
    floor_dsn = stack.postgres.create_database("floor_bench", drop_first=True).replace("+asyncpg", "")
    redis_url = stack.redis.start()
    upgrade_to_head(db_url)
    work = Path(tempfile.mkdtemp(prefix="leadflow-bench-"))
    env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_url, "LEADFLOW_ADMIN_TOKEN": "bench",
           "FLOOR_DSN": floor_dsn, "PYTHONPATH": str(ROOT), "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO")}
    py = sys.executable
    uvicorn = [*UVICORN, "--workers", str(args.processes)]
    svc_port, floor_port = free_port(), free_port()
    service = Server("leadflow", [py, "-m", "uvicorn", "app.main:app_from_env", "--factory", "--port", str(svc_port),
                                  *uvicorn], env, svc_port, work / "service.log")
    floor = Server("floor", [py, "-m", "uvicorn", "bench.floor_app:app", "--port", str(floor_port), *uvicorn],
                   env, floor_port, work / "floor.log")
    try:
        service.start([[py, "-m", "app.cli", "worker"]])
        configure_service(f"http://127.0.0.1:{svc_port}")
        service.stop()
        results: dict[str, list[dict]] = {"floor": [], "leadflow": []}
        for round_no in range(args.rounds):
            for server, url in ((floor, f"http://127.0.0.1:{floor_port}/v1/intake/bench"),
                                (service, f"http://127.0.0.1:{svc_port}/v1/intake/bench")):
                with_worker = server is service and not args.no_worker
                server.start([[py, "-m", "app.cli", "worker"]] if with_worker else [])
                out = work / f"{server.name}-{round_no}"
                out.mkdir()
                warm_up(url, args.warmup, args.connections, out / "warmup")
                results[server.name].append(run_wrk(url, args.seconds, args.connections, out) | {"out": out})
                server.stop()
                r = results[server.name][-1]
                print(f"round {round_no + 1} {server.name:9s} {r['rps']:8.0f} req/s  p50 {r['p50']:6.1f} ms  "
                      f"p99 {r['p99']:6.1f} ms  non-2xx {r['non2xx']}  {r['socket_errors']}", flush=True)
        med = {name: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99")}
               for name, rs in results.items()}
        seen = {line.strip() for r in results["leadflow"] for f in r["out"].rglob("ids-*.txt")
                for line in f.read_text().splitlines() if line.strip()}
        stored = asyncio.run(stored_lead_numbers(db_url))
        missing = seen - stored
        print()
        print(f"service = API {'alone' if args.no_worker else '+ one arq worker'}; "
              f"uvicorn --workers {args.processes} for both")
        print(f"{'':10s}{'req/s':>10s}{'p50 ms':>10s}{'p99 ms':>10s}   (medians of {args.rounds} rounds, "
              f"{args.seconds}s each after {args.warmup}s warm-up, {args.connections} connections, wrk -t2)")
        for name in ("floor", "leadflow"):
            m = med[name]
            print(f"{name:10s}{m['rps']:10.0f}{m['p50']:10.1f}{m['p99']:10.1f}")
        ratio = med["leadflow"]["rps"] / med["floor"]["rps"]
        paired = sorted(s["rps"] / f["rps"] for f, s in zip(results["floor"], results["leadflow"], strict=True))
        print(f"ratio leadflow/floor req/s: {ratio:.2f}   (target >= 0.5; p99 target <= 50 ms)")
        print(f"per-round ratios (each round's service run against the floor run just before it): "
              f"{', '.join(f'{r:.2f}' for r in paired)}; median {statistics.median(paired):.2f}")
        print(f"lead ids answered 2xx: {len(seen)}; in the database: {len(seen) - len(missing)}; "
              f"missing: {len(missing)}")
        return 1 if missing else 0
    finally:
        service.stop()
        floor.stop()
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
