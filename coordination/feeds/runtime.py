"""The feed runtime: the in-process cache of token states and rendered feeds, and its
invalidation.

A warm poll reads nothing from the database: the token's state is held in process and used
only while nothing that could change it has committed since it was read — in this process
(``invalidation``, checked synchronously) or in another (``listener``, by NOTIFY; while that
channel is down every poll reads the database). The rendered body is used only while the
state's data version and last served ETag are those it was rendered for, and never after its
``valid_until`` (a consent running out, the child's birthday at midnight).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import bindparam, or_, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination import audit, metrics
from coordination.context import ServiceContext
from coordination.domain import AuditAction
from coordination.errors import Gone, NotFound
from coordination.feeds import invalidation
from coordination.feeds.enums import FeedScope
from coordination.feeds.http import (
    GONE,
    NOT_FOUND,
    UNAVAILABLE,
    FeedAnswer,
    calendar_answers,
    next_last_modified,
    not_modified,
)
from coordination.feeds.listener import Listener, Notices
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

#: Token states held (about 300 bytes each); the oldest read goes first.
MAX_STATES = 100_000

#: Bound once: a warm poll pays for no label lookup. These are all the statuses ``poll`` answers.
_ANSWERED = {status: metrics.FEED_ANSWERS.labels(status=str(status)) for status in (200, 304, 404, 410, 503)}
_RENDERED = {outcome: metrics.FEED_RENDERS.labels(outcome=outcome) for outcome in ("new_version", "same_bytes")}


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
    #: The ``200`` and ``304`` answers of this version, built once.
    ok: FeedAnswer = field(init=False, compare=False)
    unchanged: FeedAnswer = field(init=False, compare=False)

    def __post_init__(self) -> None:
        ok, unchanged = calendar_answers(self.body, self.etag, self.last_modified)
        object.__setattr__(self, "ok", ok)
        object.__setattr__(self, "unchanged", unchanged)


@dataclass(frozen=True, slots=True)
class Stamp:
    """What had been heard of changes when a read began: this process's generation, the
    notices' mark and (SQLite) the file's data version."""

    generation: int
    mark: int
    file_version: int


@dataclass(frozen=True, slots=True)
class KnownState:
    state: TokenState
    stamp: Stamp


class ConcurrentChange(RuntimeError):
    """The token was served or changed by another request while we rendered, repeatedly."""


class FeedRuntime:
    """Per-process state of the feed service: the token states and the body cache (both by
    token hash), the event fragment cache and the last-seen times waiting to be written. Created once by the
    composition root; every instance has its own and they agree through the database."""

    def __init__(self, *, max_body_bytes: int = 64 * 1024 * 1024,
                 flush_interval: float = FLUSH_INTERVAL_SECONDS, max_states: int = MAX_STATES) -> None:
        self.fragments = FragmentCache()
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_body_bytes
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._seen: dict[int, datetime] = {}
        self._flush_interval = flush_interval
        self._flusher: asyncio.Task[None] | None = None
        self._states: dict[str, KnownState] = {}
        self._max_states = max_states
        #: Down until ``start`` knows the database: until then every poll reads it.
        self.notices = Notices()
        self._listener: Listener | None = None
        #: The database the notices are about (set by ``start``): states are used only
        #: while polls go to it.
        self._engine: AsyncEngine | None = None
        self._file: invalidation.FileVersion | None = None

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

    # token states

    def _stamp(self) -> Stamp:
        """Take before reading a state."""
        return Stamp(invalidation.generation(), self.notices.mark(),
                     self._file.value() if self._file is not None else 0)

    def _known_state(self, ctx: ServiceContext, key: str) -> TokenState | None:
        """The state held for ``key`` if nothing has committed since its read that could change
        it, here or (while the channel is up) anywhere."""
        known = self._states.get(key)
        if known is None or ctx.engine is not self._engine:
            return None
        stamp = known.stamp
        if (stamp.generation != invalidation.generation()
                or not self.notices.current(stamp.mark, known.state.unit_id)
                or (self._file is not None and stamp.file_version != self._file.value())):
            return None
        return known.state

    def _remember(self, key: str, state: TokenState, stamp: Stamp) -> None:
        self._states.pop(key, None)
        self._states[key] = KnownState(state, stamp)
        if len(self._states) > self._max_states:
            del self._states[next(iter(self._states))]

    async def _read_state(self, ctx: ServiceContext, key: str) -> TokenState | None:
        stamp = self._stamp()
        # One statement needs no transaction: in autocommit the driver sends no BEGIN and
        # ROLLBACK around it, two of the cold path's three round trips (bench/, issue 7).
        async with ctx.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
            state = await token_state(connection, key)
        if state is None:
            self._states.pop(key, None)
        else:
            self._remember(key, state, stamp)
        return state

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

    async def poll(
        self, ctx: ServiceContext, token: str, if_none_match: str | None = None,
        if_modified_since: str | None = None,
    ) -> FeedAnswer:
        """Answer one poll, counted; any failure answers 503 (never an empty calendar)."""
        try:
            answer = await self.serve(ctx, token, if_none_match, if_modified_since)
        except Exception as error:
            log.warning("feed unavailable: %s", type(error).__name__)
            answer = UNAVAILABLE
        _ANSWERED[answer.status].inc()
        return answer

    async def serve(
        self, ctx: ServiceContext, token: str, if_none_match: str | None = None,
        if_modified_since: str | None = None,
    ) -> FeedAnswer:
        """Answer one poll. Database errors propagate (the caller answers 503)."""
        if not TOKEN_SHAPE.fullmatch(token):
            return NOT_FOUND
        key = hash_token(token)
        now = ctx.now()
        state = self._known_state(ctx, key) or await self._read_state(ctx, key)
        if state is None:
            return NOT_FOUND
        if not state.usable:
            # Checked before the body cache on every poll, so no cached body outlives its
            # owner's access; the body is dropped too, it is never to be served again as it is.
            self._forget(key)
            return GONE
        entry = self._get(key)
        if entry is None or not self._fresh(entry, state, now):
            try:
                entry = await self._refresh(ctx, key, now)
            except NotFound:
                return NOT_FOUND
            except Gone:
                return GONE
        self.note_seen(entry.feed_id, now)
        if not_modified(if_none_match, if_modified_since, entry.etag, entry.last_modified):
            return entry.unchanged
        return entry.ok

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
        stamp = self._stamp()
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
            _RENDERED["same_bytes"].inc()
            self._remember(key, state, stamp)
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
                # Changes this token's state only, and that is remembered below.
                .execution_options(**{invalidation.NO_STATE_CHANGE: True})
            )
            if result.rowcount != 1:
                # Served meanwhile by another request or instance, or revoked: start over.
                self._states.pop(key, None)
                return None
            self._account(session, state, rendered, known, now)
        _RENDERED["new_version"].inc()
        # As read in the render's snapshot, plus what was just written: held under the marks
        # taken before it, so any change committed meanwhile makes the next poll read again.
        self._remember(key, replace(state, last_etag=rendered.etag, last_modified=last_modified), stamp)
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
            .execution_options(**{invalidation.NO_STATE_CHANGE: True})
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
        """Start writing last-seen times and, on PostgreSQL, listening for changes made by
        other instances; SQLite has no other instance (and no NOTIFY)."""
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_forever(ctx), name="feed-last-seen")
        self._engine = ctx.engine
        if ctx.engine.dialect.name != "postgresql":
            database = ctx.engine.url.database
            if database and database != ":memory:" and self._file is None:
                self._file = invalidation.FileVersion(database)
            self.notices.listening()
        elif self._listener is None:
            self._listener = Listener(ctx.settings.database_url, self.notices)
            self._listener.start()

    async def stop(self, ctx: ServiceContext) -> None:
        """Stop the flusher and write what is left, so a restart loses no last-seen time."""
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.flush_seen(ctx)
