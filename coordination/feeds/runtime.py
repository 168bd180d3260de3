"""The feed runtime: the in-process cache of rendered feeds and its invalidation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, or_, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination import audit
from coordination.context import ServiceContext
from coordination.domain import AuditAction
from coordination.errors import Gone, NotFound
from coordination.feeds.enums import FeedScope
from coordination.feeds.http import (
    CACHE_CONTROL,
    TEXT_GONE,
    TEXT_NOT_FOUND,
    FeedAnswer,
    http_date,
    next_last_modified,
    not_modified,
    text_answer,
)
from coordination.feeds.render import CaseAccount, FragmentCache, Rendered, render
from coordination.feeds.tokens import TOKEN_SHAPE, TokenState, token_state
from coordination.levels import Level
from coordination.models import (
    FeedToken,
)
from coordination.security import hash_token

log = logging.getLogger("samhandling.feeds")


#: How often the last-seen times of polled tokens are written.
FLUSH_INTERVAL_SECONDS = 30.0


# --- the runtime: cache, accounting, last-seen -----------------------------------------


@dataclass(frozen=True, slots=True)
class CacheEntry:
    feed_id: int
    data_version: int
    valid_until: datetime
    body: bytes
    etag: str
    last_modified: datetime
    digests: Mapping[int | None, str] = field(default_factory=dict)


class ConcurrentChange(RuntimeError):
    """The token was served or changed by another request while we rendered, repeatedly."""


class FeedRuntime:
    """Per-process state of the feed service: the body cache (by token hash), the event
    fragment cache and the last-seen times waiting to be written. Created once by the
    composition root; every instance has its own and they agree through the database."""

    def __init__(self, *, max_body_bytes: int = 64 * 1024 * 1024,
                 flush_interval: float = FLUSH_INTERVAL_SECONDS) -> None:
        self.fragments = FragmentCache()
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_body_bytes
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._seen: dict[int, datetime] = {}
        self._flush_interval = flush_interval
        self._flusher: asyncio.Task[None] | None = None

    # cache

    def _get(self, key: str) -> CacheEntry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def _put(self, key: str, entry: CacheEntry) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)
        self._entries[key] = entry
        self._bytes += len(entry.body)
        while self._bytes > self._max_bytes and len(self._entries) > 1:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.body)

    def _forget(self, key: str) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)

    @staticmethod
    def _fresh(entry: CacheEntry | None, state: TokenState, now: datetime) -> bool:
        return (
            entry is not None
            and entry.data_version == state.data_version
            and now < entry.valid_until
            # Another request or instance has served this token other bytes since: render
            # again, so that going back to these bytes is accounted for too.
            and entry.etag == state.last_etag
        )

    # serving

    async def serve(
        self, ctx: ServiceContext, token: str, if_none_match: str | None = None,
        if_modified_since: str | None = None,
    ) -> FeedAnswer:
        """Answer one poll. Database errors propagate (the caller answers 503)."""
        if not TOKEN_SHAPE.fullmatch(token):
            return text_answer(404, TEXT_NOT_FOUND)
        key = hash_token(token)
        now = ctx.now()
        # One statement needs no transaction: in autocommit the driver sends no BEGIN and
        # ROLLBACK around it, two of the warm path's three round trips (bench/, issue 7).
        async with ctx.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
            state = await token_state(connection, key)
        if state is None:
            return text_answer(404, TEXT_NOT_FOUND)
        if not state.usable:
            # Checked before the cache on every poll, so no cached body outlives its owner's
            # access; the body is dropped too, it is never to be served again as it is.
            self._forget(key)
            return text_answer(410, TEXT_GONE)
        entry = self._get(key)
        if not self._fresh(entry, state, now):
            try:
                entry = await self._refresh(ctx, key, now)
            except NotFound:
                return text_answer(404, TEXT_NOT_FOUND)
            except Gone:
                return text_answer(410, TEXT_GONE)
        assert entry is not None
        self.note_seen(entry.feed_id, now)
        headers = {"ETag": entry.etag, "Cache-Control": CACHE_CONTROL}
        if not_modified(if_none_match, if_modified_since, entry.etag, entry.last_modified):
            return FeedAnswer(304, b"", "text/calendar", headers)
        headers["Last-Modified"] = http_date(entry.last_modified)
        return FeedAnswer(200, entry.body, "text/calendar", headers)

    async def _refresh(self, ctx: ServiceContext, key: str, now: datetime) -> CacheEntry:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            for _ in range(3):
                entry = await self._render_and_account(ctx, key, now)
                if entry is not None:
                    self._put(key, entry)
                    return entry
            raise ConcurrentChange("the feed changed under every render")

    async def _render_and_account(
        self, ctx: ServiceContext, key: str, now: datetime
    ) -> CacheEntry | None:
        async with ctx.sessions() as session, session.begin():
            if ctx.engine.dialect.name == "postgresql":
                # One snapshot for the version and everything rendered from it.
                await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            connection = await session.connection()
            state = await token_state(connection, key)
            if state is None:
                raise NotFound("feed")
            if not state.usable:
                raise Gone("feed")
            rendered = await render(session, state, now, self.fragments)
        previous = self._get(key)
        known = previous.digests if previous is not None and previous.etag == state.last_etag else None
        digests = {a.case_id: a.digest for a in rendered.accounts}
        if rendered.etag == state.last_etag and state.last_modified is not None:
            # The same bytes as last served to this token: nothing new is disclosed.
            return CacheEntry(state.id, state.data_version, rendered.valid_until, rendered.body,
                              rendered.etag, state.last_modified, digests)
        last_modified = next_last_modified(state.last_modified, state.last_etag, rendered.etag,
                                           rendered.newest_change, now)
        async with ctx.transaction() as session:
            connection = await session.connection()
            result = await connection.execute(
                update(FeedToken)
                .where(col(FeedToken.id) == state.id, col(FeedToken.last_etag) == state.last_etag,
                       col(FeedToken.revoked_at).is_(None))
                .values(last_etag=rendered.etag, last_modified=last_modified)
            )
            if result.rowcount != 1:
                # Served meanwhile by another request or instance, or revoked: start over.
                return None
            self._account(session, state, rendered, known, now)
        log.info("feed %s: new version served (%d cases)", state.id, len(rendered.accounts))
        return CacheEntry(state.id, state.data_version, rendered.valid_until, rendered.body,
                          rendered.etag, last_modified, digests)

    @staticmethod
    def _account(
        session: AsyncSession, state: TokenState, rendered: Rendered,
        known: Mapping[int | None, str] | None, now: datetime,
    ) -> None:
        """Rule 9: one ``feed.served`` entry per case whose part of the feed is new. For a
        coordinator's feed, cases whose part is unchanged since the last version (as this
        process knows it) are not written again; a part that vanished is written as empty."""
        accounts = list(rendered.accounts)
        if known is not None and state.scope is FeedScope.COORDINATOR:
            current = {a.case_id for a in accounts}
            accounts = [a for a in accounts if known.get(a.case_id) != a.digest]
            accounts += [CaseAccount(case_id, Level.NONE, (), (), "")
                         for case_id in sorted(c for c in known if c is not None)
                         if case_id not in current]
        for account in accounts:
            detail: dict[str, object] = {
                "feed": state.id,
                "scope": state.scope.value,
                "level": account.level.value,
                "meeting_ids": list(account.meeting_ids),
                "consent_record_ids": list(account.consent_record_ids),
            }
            if state.contact_id is not None:
                detail["contact"] = state.contact_id
            if state.user_id is not None:
                detail["user"] = state.user_id
            audit.record(session, unit_id=state.unit_id, case_id=account.case_id,
                         actor=f"feed:{state.id}", action=AuditAction.FEED_SERVED, subject=f"feed:{state.id}",
                         at=now, detail=detail)

    # last seen

    def note_seen(self, feed_id: int, at: datetime) -> None:
        current = self._seen.get(feed_id)
        if current is None or at > current:
            self._seen[feed_id] = at

    @property
    def pending_seen(self) -> Mapping[int, datetime]:
        return dict(self._seen)

    async def flush_seen(self, ctx: ServiceContext) -> int:
        """Write the last-seen times gathered since the last flush, in one transaction."""
        if not self._seen:
            return 0
        batch, self._seen = self._seen, {}
        statement = (
            update(FeedToken)
            .where(col(FeedToken.id) == bindparam("feed_id"),
                   or_(col(FeedToken.last_seen_at).is_(None),
                       col(FeedToken.last_seen_at) < bindparam("seen_at")))
            .values(last_seen_at=bindparam("seen_at"))
        )
        rows = [{"feed_id": feed_id, "seen_at": at} for feed_id, at in sorted(batch.items())]
        try:
            async with ctx.engine.begin() as connection:
                await connection.execute(statement, rows)
        except Exception as error:
            for feed_id, at in batch.items():
                self.note_seen(feed_id, at)
            log.warning("could not write last-seen times of %d feeds: %s", len(batch),
                        type(error).__name__)
            return 0
        return len(rows)

    async def _flush_forever(self, ctx: ServiceContext) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            await self.flush_seen(ctx)

    def start(self, ctx: ServiceContext) -> None:
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_forever(ctx), name="feed-last-seen")

    async def stop(self, ctx: ServiceContext) -> None:
        """Stop the flusher and write what is left, so a restart loses no last-seen time."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.flush_seen(ctx)
