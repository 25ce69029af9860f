"""`leadflow` command line: run everything, or one part (api, worker, migrate), and ops verbs."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from app.settings import Settings, get_settings

cli = typer.Typer(help="leadflow: lead intake and assignment backend", no_args_is_help=True)
sources_cli = typer.Typer(help="Sources: status (the default), load from YAML", invoke_without_command=True)
submissions_cli = typer.Typer(help="Stored submissions")
cli.add_typer(sources_cli, name="sources")
cli.add_typer(submissions_cli, name="submissions")


def _echo(message: str) -> None:
    typer.echo(f"leadflow: {message}", err=True)


@dataclass
class Embedded:
    """The embedded servers a command uses: `env` to pass on, and those it started itself (to stop at exit)."""

    env: dict[str, str] = field(default_factory=dict)
    started: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        """Stop only what this process started: another `leadflow run` may be using the rest."""
        for server in reversed(self.started):
            server.stop()
        self.started.clear()


def start_embedded_if_needed(settings: Settings, *, redis: bool = True) -> Embedded:
    """Start embedded PostgreSQL (and Redis, unless not needed) for whichever URL is unset."""
    embedded = Embedded()
    if settings.database_url and (settings.redis_url or not redis):
        return embedded
    warnings.filterwarnings("ignore", module="platformdirs")
    from app.embedded import EmbeddedPostgres, EmbeddedRedis

    root = settings.data_dir.resolve()
    try:
        if not settings.database_url:
            pg = EmbeddedPostgres(root / "postgres")
            pg.start()
            if pg.started:
                embedded.started.append(pg)
            embedded.env["DATABASE_URL"] = pg.create_database("leadflow")
            _echo(f"embedded PostgreSQL on 127.0.0.1:{pg.port} (data in {pg.pgdata})")
        if redis and not settings.redis_url:
            server = EmbeddedRedis(root / "redis")
            embedded.env["REDIS_URL"] = server.start()
            if server.started:
                embedded.started.append(server)
            _echo(f"embedded Redis on 127.0.0.1:{server.port}")
    except BaseException:
        embedded.stop()
        raise
    return embedded


def _admin_token(settings: Settings) -> dict[str, str]:
    if settings.admin_token is not None:
        return {}
    path = settings.data_dir / "admin_token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    _echo(f"LEADFLOW_ADMIN_TOKEN not set: using the generated token in {path}")
    return {"LEADFLOW_ADMIN_TOKEN": path.read_text().strip()}


@cli.command()
def run(
    port: int = typer.Option(None, help="API port (default: PORT or 8000)"),
    workers: int = typer.Option(1, help="arq worker processes"),
) -> None:
    """Start everything on this machine: embedded servers if needed, migrations, the API and its worker."""
    settings = get_settings()
    embedded = start_embedded_if_needed(settings)
    try:
        _run(settings, embedded.env, port, workers)
    finally:  # also when migrations or the sources file fail: what we started does not outlive us
        embedded.stop()
        _echo("stopped")


def _run(settings: Settings, env: dict[str, str], port: int | None, workers: int) -> None:
    env = dict(env)
    os.environ.update(env)
    env.update(_admin_token(settings))
    os.environ.update(env)
    get_settings.cache_clear()
    settings = get_settings()
    _migrate(settings)
    _load_sources_file(settings)
    child_env = {**os.environ, **env}
    api_cmd = [sys.executable, "-m", "uvicorn", "app.main:app_from_env", "--factory", "--host", settings.host,
               "--port", str(port or settings.port), "--no-access-log", "--log-level", "warning"]
    worker_cmd = [sys.executable, "-m", "app.cli", "worker"]
    # Children get their own session: Ctrl-C reaches only us, and we forward exactly one SIGINT to each
    # (two would make uvicorn abort its shutdown half-way).
    def spawn(cmd: list[str]) -> subprocess.Popen:
        return subprocess.Popen(cmd, env=child_env, start_new_session=True)

    procs = {"api": spawn(api_cmd)}
    for index in range(workers):
        procs[f"worker{index}"] = spawn(worker_cmd)
    _echo(f"API on http://{settings.host}:{port or settings.port}  (Ctrl-C stops everything)")
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stopping:
            time.sleep(0.5)
            for name, proc in list(procs.items()):
                if proc.poll() is None or stopping:
                    continue
                if name == "api":
                    _echo(f"API exited with {proc.returncode}; stopping")
                    stopping = True
                    break
                _echo(f"{name} exited with {proc.returncode}; restarting it")
                procs[name] = spawn(worker_cmd)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@cli.command()
def api(port: int = typer.Option(None), host: str = typer.Option(None)) -> None:
    """Serve only the HTTP API (uses DATABASE_URL / REDIS_URL as given)."""
    import uvicorn

    settings = get_settings()
    _load_sources_file(settings)
    uvicorn.run("app.main:app_from_env", factory=True, host=host or settings.host, port=port or settings.port,
                access_log=False, log_level="warning")


@cli.command()
def worker() -> None:
    """Run one arq worker: assignment jobs, outbox sweep, heartbeat."""
    from app.logs import configure_logging
    from app.workers.settings import build_worker

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    if settings.worker_nice > os.getpriority(os.PRIO_PROCESS, 0):  # raising niceness needs no privilege
        os.setpriority(os.PRIO_PROCESS, 0, settings.worker_nice)
    _use_uvloop()  # arq runs on the current event loop: the same one the API's uvicorn uses
    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port, addr=settings.host)
    build_worker(settings).run()


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # not on this platform: asyncio's own loop
        return
    asyncio.set_event_loop(uvloop.new_event_loop())


def _migrate(settings: Settings) -> None:
    from app.migrate import upgrade_to_head

    upgrade_to_head(settings.require_database_url())
    _echo("database at the latest migration")


@cli.command()
def migrate() -> None:
    """Apply database migrations up to head."""
    settings = get_settings()
    embedded = start_embedded_if_needed(settings, redis=False)  # migrations need only PostgreSQL
    try:
        os.environ.update(embedded.env)
        get_settings.cache_clear()
        _migrate(get_settings())
    finally:
        embedded.stop()


def _load_sources_file(settings: Settings, path: Path | None = None) -> None:
    path = path or settings.sources_file
    if path is None:
        return
    from app.db import create_engine, create_sessionmaker, unit_of_work
    from app.domain.clock import SystemClock
    from app.domain.errors import InvalidInput
    from app.domain.sources.service import load_sources, parse_sources_file

    try:
        items = parse_sources_file(path)
    except InvalidInput as error:  # say which entry and field, not a traceback
        _echo(f"{error.detail}:")
        for field_error in error.errors:
            typer.echo(f"  {field_error.field}: {field_error.message} ({field_error.code})", err=True)
        raise typer.Exit(1) from None

    async def _load() -> list[str]:
        engine = create_engine(settings.require_database_url(), pool_size=1)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                return [s.key for s in await load_sources(session, items, SystemClock())]
        finally:
            await engine.dispose()

    keys = asyncio.run(_load())
    _echo(f"loaded {len(keys)} source(s) from {path}: {', '.join(keys)}")


@sources_cli.command("load")
def sources_load(path: Path) -> None:
    """Create or update sources from a YAML file (`sources: [...]`)."""
    _load_sources_file(get_settings(), path)


@cli.command()
def openapi(output: Path = typer.Option(Path("openapi/openapi.json"))) -> None:
    """Write the OpenAPI contract the front-end teams build against."""
    from app.main import create_app

    output.write_text(render_openapi(create_app(Settings(DATABASE_URL="x", REDIS_URL="x"))) )
    _echo(f"wrote {output}")


def render_openapi(app) -> str:
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def _register_ops() -> None:
    from app import ops

    @sources_cli.callback()
    def _sources_default(ctx: typer.Context) -> None:
        """`leadflow sources` alone prints the status table."""
        if ctx.invoked_subcommand is None:
            ops.sources_status(check=False)

    sources_cli.command("status")(ops.sources_status)
    submissions_cli.command("replay")(ops.replay)
    cli.command("probe")(ops.probe)
    cli.command("doctor")(ops.doctor)
    cli.command("import")(ops.import_leads)


def main() -> None:
    _register_ops()
    cli()


if __name__ == "__main__":
    main()
