"""R7.3: the ops CLI, run as ops run it (`python -m app.cli …`, its own process)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys


async def leadflow(settings, *args: str, extra_env: dict[str, str] | None = None) -> tuple[int, str]:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
           "COLUMNS": "200", **(extra_env or {})}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "app.cli", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode()


async def test_replay_rejected_submissions_after_fixing_the_mapping(client, make_source, admin, settings):
    await make_source(key="expo")
    for i in range(3):
        await client.post("/v1/intake/expo", json={"姓名": f"客户{i}", "手机号码": f"1361234567{i}"})
    await client.patch("/v1/sources/expo", headers=admin, json={"field_mapping": {"手机号码": "phone"}})
    code, out = await leadflow(settings, "submissions", "replay", "--source", "expo")
    assert code == 0 and out.count("accepted LD-") == 3 and "replayed 3: 3 accepted" in out
    code, out = await leadflow(settings, "submissions", "replay", "--source", "expo")
    assert "replayed 0" in out  # nothing left to replay


async def test_sources_status_table_and_check_flag(client, make_source, settings, db):
    from sqlalchemy import text

    await make_source(key="live")
    await make_source(key="quiet")
    await client.post("/v1/intake/live", json={"name": "甲", "phone": "13800138000"})
    code, out = await leadflow(settings, "sources")
    assert code == 0 and "live" in out and "accepted=1" in out  # `leadflow sources` alone: the table
    code, out = await leadflow(settings, "sources", "status", "--check")
    assert code == 0 and "live" in out
    async with db.begin() as conn:
        await conn.execute(text("UPDATE sources SET created_at = now() - interval '3 days'"))
    code, out = await leadflow(settings, "sources", "status", "--check")
    assert code == 1 and "STALE" in out


async def test_probe_prints_the_brief_and_the_fix(settings, fake, db):
    wecom = {"LEADFLOW_WECOM_BASE_URL": fake.base_url, "LEADFLOW_WECOM_CORP_ID": fake.corp_id,
             "LEADFLOW_WECOM_SECRET": fake.secret, "LEADFLOW_WECOM_AGENT_ID": str(fake.agent_id)}
    code, out = await leadflow(settings, "probe", extra_env=wecom)
    assert code == 0 and "wecom_app: ok" in out
    fake.refuse_ip = True
    code, out = await leadflow(settings, "probe", extra_env=wecom)
    assert "failing (ip_not_allowed)" in out and "203.0.113.9" in out


async def test_doctor_names_what_to_fix(settings, db):
    code, out = await leadflow(settings, "doctor", extra_env={"LEADFLOW_WECOM_CORP_ID": "ww1"})
    assert code == 1
    assert "WeCom is half configured" in out and "worker" in out  # no worker is running in this test
    assert "no ops channel" in out


async def test_import_csv_and_xlsx_with_a_report_of_rejected_rows(tmp_path, make_source, settings, db):
    from openpyxl import Workbook
    from sqlalchemy import func, select

    from app.domain.leads.models import Lead

    await make_source(key="legacy", field_mapping={"客户姓名": "name", "手机": "phone"})
    csv_file = tmp_path / "leads.csv"
    csv_file.write_text("客户姓名,手机,备注\n张三,138 0013 8000,老客户\n李四,12345,号码错\n王五,+86 139-1234-5678,\n",
                        encoding="utf-8-sig")
    code, out = await leadflow(settings, "import", str(csv_file), "--source", "legacy")
    assert code == 0 and "accepted 2" in out and "rejected 1" in out
    report = (tmp_path / "leads.csv.rejected.csv").read_text(encoding="utf-8-sig")
    assert "李四" in report and "phone:invalid_phone" in report and "row" in report.splitlines()[0]
    code, out = await leadflow(settings, "import", str(csv_file), "--source", "legacy")
    assert "duplicate 2" in out  # the same file again creates nothing
    book = Workbook()
    book.active.append(["客户姓名", "手机"])
    book.active.append(["赵六", 13700137000])
    book.save(tmp_path / "more.xlsx")
    code, out = await leadflow(settings, "import", str(tmp_path / "more.xlsx"), "--source", "legacy")
    assert "accepted 1" in out
    async with db.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(Lead))).scalar_one() == 3


async def test_importing_into_a_browser_source_ignores_its_honeypot_field(tmp_path, make_source, settings, db):
    """A CRM export has a website column; only bots fill the hidden one in a form."""
    from sqlalchemy import func, select

    from app.domain.leads.models import Lead

    await make_source(key="h5", kind="wechat_h5", auth={"mode": "browser", "allowed_origins": ["*"]})
    csv_file = tmp_path / "crm.csv"
    csv_file.write_text("name,phone,website\n张三,13800138000,https://zhangsan.example.cn\n", encoding="utf-8")
    code, out = await leadflow(settings, "import", str(csv_file), "--source", "h5")
    assert code == 0 and "accepted 1" in out
    async with db.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(Lead))).scalar_one() == 1  # was spam


async def test_doctor_checks_the_allowlist_with_wecom(settings, fake, db):
    wecom = {"LEADFLOW_WECOM_BASE_URL": fake.base_url, "LEADFLOW_WECOM_CORP_ID": fake.corp_id,
             "LEADFLOW_WECOM_SECRET": fake.secret, "LEADFLOW_WECOM_AGENT_ID": str(fake.agent_id),
             "LEADFLOW_EGRESS_IPS": '["198.51.100.7"]', "LEADFLOW_WORKER_HEARTBEAT_MAX_AGE": "100000"}
    import redis.asyncio as aioredis

    from app.queue import worker_heartbeat_key

    client = aioredis.from_url(settings.redis_url)
    await client.set(worker_heartbeat_key(settings.queue_name), "9999999999")  # pretend a worker is alive
    await client.aclose()
    fake.refuse_ip = True
    code, out = await leadflow(settings, "doctor", extra_env=wecom)
    assert code == 1 and "Add 203.0.113.9" in out and "NOT in LEADFLOW_EGRESS_IPS" in out


async def test_a_sources_file_with_mistakes_names_them_instead_of_a_traceback(tmp_path, settings, db):
    empty = tmp_path / "empty.yaml"
    empty.write_text("sources:\n", encoding="utf-8")
    code, out = await leadflow(settings, "sources", "load", str(empty))
    assert code == 0 and "loaded 0 source(s)" in out
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("sources:\n  - key: h5\n    name: H5\n    kind: wechat_h5\n    colour: red\n", encoding="utf-8")
    code, out = await leadflow(settings, "sources", "load", str(wrong))
    assert code == 1 and "Traceback" not in out and "sources[0].colour" in out


async def test_leadflow_run_stops_the_embedded_servers_it_started_and_only_those(tmp_path):
    """The README's first command: with no URLs it starts embedded servers; a second `leadflow run` on the same
    data folder must not take them down under the first when it stops."""
    import socket

    import httpx

    from app.embedded import EmbeddedPostgres, EmbeddedRedis

    data = tmp_path / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")} | {
        "LEADFLOW_DATA_DIR": str(data), "PORT": str(port), "LEADFLOW_ADMIN_TOKEN": "t"}

    async def run_until_healthy_then_stop() -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "app.cli", "run", env=env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        async with httpx.AsyncClient() as http:
            for _ in range(900):
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
        return proc.returncode, out.decode()

    def listening(port_: int) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port_)) == 0

    pg, redis = EmbeddedPostgres(data / "postgres"), EmbeddedRedis(data / "redis")
    code, out = await run_until_healthy_then_stop()
    assert code == 0 and "API on http" in out, out[-2000:]
    assert not pg.is_running() and not listening(redis.port)  # it started them: it stopped them
    pg.start()
    redis.start()  # as another `leadflow run` on this folder would have
    try:
        code, out = await run_until_healthy_then_stop()
        assert code == 0 and "API on http" in out, out[-2000:]
        assert pg.is_running() and listening(redis.port)  # not its own: left running
    finally:
        redis.stop()
        pg.stop()
