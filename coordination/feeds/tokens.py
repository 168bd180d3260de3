"""Feed tokens: creating, listing and revoking feeds, and a token's state in one query."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased
from sqlmodel import col
from sqlmodel import select as sm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.access.rules import case_for, may_see_case, require_role
from coordination.changes import Change, actor_of
from coordination.domain import AuditAction, UserRole
from coordination.errors import InputError, NotFound, not_found
from coordination.feeds.enums import FeedScope
from coordination.models import (
    Case,
    Contact,
    FeedToken,
    Unit,
    User,
)
from coordination.schemas import CaseFeedIn, FeedCreated, FeedOut, MyFeedIn
from coordination.security import hash_token, new_token

#: ``secrets.token_urlsafe(32)`` gives 43 characters; anything far from that is not ours.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{22,128}")


# --- tokens ----------------------------------------------------------------------------


def feed_urls(public_base_url: str, token: str) -> tuple[str, str]:
    """The https address, and the ``webcal://`` one that makes Apple and Outlook subscribe."""
    url = f"{public_base_url.rstrip('/')}/feeds/{token}.ics"
    _, sep, rest = url.partition("://")
    return url, f"webcal://{rest}" if sep else url


def feed_out(feed: FeedToken, seen: Mapping[int, datetime] | None = None) -> FeedOut:
    """``seen`` holds last-seen times not yet flushed to the database."""
    assert feed.id is not None
    last_seen = feed.last_seen_at
    pending = (seen or {}).get(feed.id)
    if pending is not None and (last_seen is None or pending > last_seen):
        last_seen = pending
    return FeedOut(
        id=feed.id,
        scope=feed.scope,
        label=feed.label,
        case_id=feed.case_id,
        contact_id=feed.contact_id,
        user_id=feed.user_id,
        created_by_user_id=feed.created_by_user_id,
        created_at=feed.created_at,
        revoked_at=feed.revoked_at,
        last_seen_at=last_seen,
    )


def _created(feed: FeedToken, token: str, public_base_url: str) -> FeedCreated:
    out = feed_out(feed)
    url, webcal = feed_urls(public_base_url, token)
    return FeedCreated(
        id=out.id, scope=out.scope, label=out.label, case_id=out.case_id,
        contact_id=out.contact_id, user_id=out.user_id, created_by_user_id=out.created_by_user_id,
        created_at=out.created_at, revoked_at=out.revoked_at, last_seen_at=out.last_seen_at,
        url=url, webcal_url=webcal, token=token,
    )


async def _add_feed(
    change: Change, user: User, scope: FeedScope, now: datetime, label: str, *,
    case_id: int | None = None, contact_id: int | None = None,
) -> tuple[FeedToken, str]:
    session = change.session
    assert user.id is not None
    token = new_token()
    feed = FeedToken(
        token_hash=hash_token(token),
        unit_id=user.unit_id,
        scope=scope,
        user_id=user.id if scope is FeedScope.COORDINATOR else None,
        case_id=case_id,
        contact_id=contact_id,
        label=label,
        created_by_user_id=user.id,
        created_at=now,
    )
    session.add(feed)
    await session.flush()
    detail: dict[str, object] = {"feed": feed.id, "scope": scope.value}
    if contact_id is not None:
        detail["contact"] = contact_id
    change.record(AuditAction.FEED_CREATED, f"feed:{feed.id}", detail, feeds=False)
    return feed, token


async def create_case_feed(
    session: AsyncSession, user: User, case_id: int, data: CaseFeedIn, now: datetime,
    public_base_url: str,
) -> FeedCreated:
    """A case or contact feed; the token is in the answer and nowhere else."""
    # A closed case takes no new feed, as it takes no other change (its feeds went when it closed).
    change = Change.in_case(session, await case_for(session, user, case_id), user, now)
    scope = FeedScope(data.scope)
    if scope is FeedScope.CASE:
        if data.contact_id is not None:
            raise InputError("contact_id", "only a contact feed names a contact; leave it out")
    else:
        if data.contact_id is None:
            raise InputError("contact_id", "a contact feed needs the contact it is for")
        contact = await session.get(Contact, data.contact_id)
        if contact is None or contact.case_id != case_id:
            raise InputError("contact_id", f"contact {data.contact_id} is not a contact of this case")
        if not contact.active:
            raise InputError("contact_id", f"contact {data.contact_id} is no longer active in this case")
    feed, token = await _add_feed(change, user, scope, now, data.label, case_id=case_id,
                                  contact_id=data.contact_id)
    return _created(feed, token, public_base_url)


async def create_my_feed(
    session: AsyncSession, user: User, data: MyFeedIn, now: datetime, public_base_url: str
) -> FeedCreated:
    """A coordinator's (or leader's) own feed of every case they may open."""
    require_role(user, UserRole.COORDINATOR, UserRole.LEADER)
    change = Change(session, user.unit_id, None, actor_of(user), now)
    feed, token = await _add_feed(change, user, FeedScope.COORDINATOR, now, data.label)
    return _created(feed, token, public_base_url)


async def list_case_feeds(
    session: AsyncSession, user: User, case_id: int, seen: Mapping[int, datetime] | None = None
) -> list[FeedOut]:
    await case_for(session, user, case_id)
    rows = await session.exec(
        sm_select(FeedToken).where(FeedToken.case_id == case_id).order_by(col(FeedToken.id))
    )
    return [feed_out(f, seen) for f in rows.all()]


async def list_my_feeds(
    session: AsyncSession, user: User, seen: Mapping[int, datetime] | None = None
) -> list[FeedOut]:
    rows = await session.exec(
        sm_select(FeedToken)
        .where(FeedToken.scope == FeedScope.COORDINATOR, FeedToken.user_id == user.id)
        .order_by(col(FeedToken.id))
    )
    return [feed_out(f, seen) for f in rows.all()]


async def revoke_feed(
    session: AsyncSession, user: User, feed_id: int, now: datetime,
    seen: Mapping[int, datetime] | None = None,
) -> FeedOut:
    """From now on the address answers 410 Gone. Revoking twice changes nothing."""
    feed = await session.get(FeedToken, feed_id)
    if feed is None or feed.unit_id != user.unit_id:
        raise not_found("feed", feed_id)
    if feed.scope is FeedScope.COORDINATOR:
        if feed.user_id != user.id:
            raise not_found("feed", feed_id)
    else:
        assert feed.case_id is not None
        try:
            await case_for(session, user, feed.case_id)
        except NotFound:
            raise not_found("feed", feed_id) from None
    if feed.revoked_at is None:
        feed.revoked_at = now
        session.add(feed)
        change = Change(session, feed.unit_id, feed.case_id, actor_of(user), now)
        change.record(AuditAction.FEED_REVOKED, f"feed:{feed_id}", {"feed": feed_id, "scope": feed.scope}, feeds=False)
    return feed_out(feed, seen)


# --- what a token stands for -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenState:
    """The token row joined with its unit's data version and with what decides whether its
    owner may still see its scope: all a warm request reads."""

    id: int
    unit_id: int
    scope: FeedScope
    user_id: int | None
    case_id: int | None
    contact_id: int | None
    created_at: datetime
    revoked_at: datetime | None
    last_etag: str
    last_modified: datetime | None
    data_version: int
    show_child_name: bool
    #: The owner (the coordinator feed's user, or whoever created a case or contact feed).
    owner_active: bool
    #: The owner may see the feed's case now (access.may_see_case); False without a case.
    owner_sees_case: bool
    #: The contact of a contact feed is still an active contact of the case: a feed cannot be
    #: made for an inactive contact, and one made before does not outlive the deactivation.
    contact_active: bool

    @property
    def usable(self) -> bool:
        """Rule 11: a feed belongs to a user, and is gone once it is revoked, once that user
        leaves, or once they may no longer see what it shows."""
        if self.revoked_at is not None or not self.owner_active:
            return False
        if self.scope is FeedScope.COORDINATOR:
            return True
        return self.owner_sees_case and (self.scope is FeedScope.CASE or self.contact_active)


_Owner = aliased(User)


_STATE_QUERY = (
    select(
        col(FeedToken.id), col(FeedToken.unit_id), col(FeedToken.scope), col(FeedToken.user_id),
        col(FeedToken.case_id), col(FeedToken.contact_id), col(FeedToken.created_at),
        col(FeedToken.revoked_at), col(FeedToken.last_etag), col(FeedToken.last_modified),
        col(Unit.data_version), col(Unit.show_child_name_in_feeds), col(_Owner.active),
        may_see_case(_Owner.id, _Owner.role, _Owner.unit_id, FeedToken.case_id, Case.unit_id),
        and_(col(Contact.case_id) == col(FeedToken.case_id), col(Contact.active)),
    )
    .join(Unit, col(Unit.id) == col(FeedToken.unit_id))
    # One statement, however many facts: polls are the hot path (one query per poll).
    .outerjoin(_Owner, col(_Owner.id) == func.coalesce(FeedToken.user_id, FeedToken.created_by_user_id))
    .outerjoin(Case, col(Case.id) == col(FeedToken.case_id))
    .outerjoin(Contact, col(Contact.id) == col(FeedToken.contact_id))
    .where(col(FeedToken.token_hash) == bindparam("token_hash"))
)


async def token_state(connection: AsyncConnection, token_hash: str) -> TokenState | None:
    row = (await connection.execute(_STATE_QUERY, {"token_hash": token_hash})).first()
    if row is None or row[0] is None:
        return None
    return TokenState(
        id=row[0], unit_id=row[1], scope=row[2], user_id=row[3], case_id=row[4],
        contact_id=row[5], created_at=row[6], revoked_at=row[7], last_etag=row[8],
        last_modified=row[9], data_version=row[10], show_child_name=bool(row[11]),
        owner_active=bool(row[12]), owner_sees_case=bool(row[13]), contact_active=bool(row[14]),
    )
