"""The fault suite, small (issue 5): `make chaos` runs 5,000 leads; this runs 400 in every `make test`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


async def test_nothing_is_lost_or_done_twice_through_kills_restarts_and_a_wecom_outage(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "chaos" / "run.py"), "--leads", "400", "--rate", "100", "--kills", "4",
        "--settle", "90", "--data-dir", str(tmp_path / "chaos"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 240)
    text = out.decode()
    assert proc.returncode == 0 and "RESULT: ok" in text, text[-3000:]
    assert "lost (2xx id not stored)     0" in text and "double-assigned              0" in text
