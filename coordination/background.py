"""What an instance does besides answering requests: the outbox dispatcher (when enabled)
and the periodic scan for coordinator alerts and for what time alone changes in consent
(which also deletes old web sessions). Both are started and stopped by the app's lifespan;
neither keeps state of its own beyond the database."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from coordination.consent import over_time
from coordination.context import ServiceContext
from coordination.outbox import alerts
from coordination.outbox.dispatcher import build_dispatcher
from coordination.outbox.store import instance_name, release_claims
from coordination.records import retention
from coordination.replies.inbox import read_forever, select_inbox
from coordination.web.session import delete_old_sessions
from notifications.dispatcher import Dispatcher

log = logging.getLogger(__name__)

#: How often to look for deadlines (consent expiring, evaluations overdue, ...).
ALERT_SCAN_SECONDS = 600


async def scan_once(ctx: ServiceContext) -> int:
    """One round of the scan: deadlines, consent that time has ended (alerts) or brought into
    force (held-back invitations go out), the end of cases (a plan past its end, a deletion due),
    and the deletion of closed cases whose retention period has passed. Returns the alerts raised."""
    async with ctx.transaction() as session:
        raised = await alerts.scan(session, ctx.now())
    async with ctx.transaction() as session:
        raised += await over_time.consent_over_time(session, ctx.now())
    async with ctx.transaction() as session:
        raised += await retention.raise_alerts(session, ctx.now(), ctx.settings.retention_days)
    await retention.purge_due(ctx)
    return raised


class Background:
    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self.dispatcher: Dispatcher | None = None
        self._scan: asyncio.Task[None] | None = None
        self._inbox: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not self._ctx.settings.dispatcher_enabled:
            return
        self.dispatcher = build_dispatcher(self._ctx)
        self._ctx.wake_dispatcher = self.dispatcher.wake
        await self.dispatcher.start()
        self._scan = asyncio.get_running_loop().create_task(self._scan_forever())
        # Answers, proposed times and bounces in the ORGANIZER mailbox (coordination.replies).
        self._inbox = asyncio.get_running_loop().create_task(read_forever(self._ctx, select_inbox(self._ctx)))

    async def stop(self) -> None:
        for task in (self._scan, self._inbox):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.dispatcher is not None:
            await self.dispatcher.stop()
            with contextlib.suppress(Exception):
                await release_claims(self._ctx, instance_name())

    async def _scan_forever(self) -> None:
        while True:
            try:
                raised = await scan_once(self._ctx)
                if raised:
                    log.info("alert scan raised %d alert(s)", raised)
                async with self._ctx.transaction() as session:
                    await delete_old_sessions(session, self._ctx.settings, self._ctx.now())
            except Exception as error:  # the database may be down; try again next round
                log.warning("alert scan failed: %s", type(error).__name__)
            await asyncio.sleep(ALERT_SCAN_SECONDS)
