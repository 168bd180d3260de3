"""The demo case as a fixture (``record_scene.Demo``)."""

from __future__ import annotations

import pytest
from record_scene import Client, Demo, send_due

from coordination import demo
from coordination.context import ServiceContext


@pytest.fixture
async def demo_case(client: Client, service: ServiceContext) -> Demo:
    async with service.transaction() as session:
        info = await demo.seed(session, service.now())
    await send_due(service)
    return Demo(info.case_id, {"Authorization": f"Bearer {info.coordinator_token}"},
                {"Authorization": f"Bearer {info.leader_token}"}, service.settings.mail_folder)
