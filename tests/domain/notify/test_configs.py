"""R3.6: a canary config gets its share of deliveries, the full one the rest."""

from __future__ import annotations

from datetime import UTC, datetime

from app.db import unit_of_work
from app.domain.notify.configs import IntegrationConfig, pick_config

NOW = datetime(2026, 11, 25, tzinfo=UTC)


async def test_canary_share_splits_deliveries(app):
    async with unit_of_work(app.state.sessions) as session:
        for version, stage in ((1, "full"), (2, "canary")):
            session.add(IntegrationConfig(channel="wecom_app", version=version, stage=stage, config={"v": version},
                                          created_at=NOW, updated_at=NOW))
    async with unit_of_work(app.state.sessions) as session:
        assert {(await pick_config(session, "wecom_app", 0.0)).version for _ in range(20)} == {1}
        assert {(await pick_config(session, "wecom_app", 1.0)).version for _ in range(20)} == {2}
        picks = [(await pick_config(session, "wecom_app", 0.3)).version for _ in range(400)]
    assert 60 <= picks.count(2) <= 180  # about 30 %
