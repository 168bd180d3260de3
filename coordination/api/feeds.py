"""Calendar feeds: creating, listing and revoking subscriptions, and serving them.

The feed itself (``GET /feeds/{token}.ics``) needs no sign-in: the token in the address
is the capability. Any failure there answers 503 with Retry-After, never a 200 with an
empty calendar, which a client would take as "all meetings were cancelled".
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, HeaderParameter, JSONBody

from coordination.api.deps import Ctx, CurrentUser, PathId
from coordination.feeds import http as feed_http
from coordination.feeds import tokens as feed_tokens
from coordination.feeds.http import FeedAnswer
from coordination.feeds.runtime import FeedRuntime
from coordination.schemas import CaseFeedIn, FeedCreated, FeedOut, MyFeedIn


async def provide_feeds(state: State) -> FeedRuntime:
    runtime: FeedRuntime = state.feeds
    return runtime


Feeds = NamedDependency[FeedRuntime]


def _response(answer: FeedAnswer) -> Response[bytes]:
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type,
                    headers=dict(answer.headers))


class FeedController(Controller):
    path = ""
    tags = ["feeds"]
    dependencies = {"feeds_runtime": Provide(provide_feeds)}

    @post("/cases/{case_id:int}/feeds")
    async def create_case_feed(
        self, ctx: Ctx, user: CurrentUser, case_id: PathId, data: JSONBody[CaseFeedIn]
    ) -> FeedCreated:
        """A case feed (the team) or a contact feed (their own meetings, at their consent
        level). The token is shown in this answer only."""
        async with ctx.transaction() as session:
            return await feed_tokens.create_case_feed(session, user, case_id, data, ctx.now(),
                                                ctx.settings.public_base_url)

    @get("/cases/{case_id:int}/feeds")
    async def list_case_feeds(
        self, ctx: Ctx, user: CurrentUser, feeds_runtime: Feeds, case_id: PathId
    ) -> list[FeedOut]:
        """The case's calendar subscriptions, revoked ones included; never their tokens."""
        async with ctx.transaction() as session:
            return await feed_tokens.list_case_feeds(session, user, case_id, feeds_runtime.pending_seen)

    @post("/users/me/feeds")
    async def create_my_feed(
        self, ctx: Ctx, user: CurrentUser,
        data: JSONBody[MyFeedIn | None] = None,
    ) -> FeedCreated:
        """The signed-in coordinator's feed of all their cases (a leader's: the unit's)."""
        async with ctx.transaction() as session:
            return await feed_tokens.create_my_feed(session, user, data or MyFeedIn(), ctx.now(),
                                              ctx.settings.public_base_url)

    @get("/users/me/feeds")
    async def list_my_feeds(self, ctx: Ctx, user: CurrentUser, feeds_runtime: Feeds) -> list[FeedOut]:
        """The signed-in user's own feeds (of all their cases), revoked ones included; never their
        tokens."""
        async with ctx.transaction() as session:
            return await feed_tokens.list_my_feeds(session, user, feeds_runtime.pending_seen)

    @delete("/feeds/{feed_id:int}", status_code=200)
    async def revoke_feed(
        self, ctx: Ctx, user: CurrentUser, feeds_runtime: Feeds, feed_id: PathId
    ) -> FeedOut:
        """Revoke a calendar subscription: from now on its address answers 410 Gone."""
        async with ctx.transaction() as session:
            return await feed_tokens.revoke_feed(session, user, feed_id, ctx.now(),
                                           feeds_runtime.pending_seen)

    @get("/feeds/{filename:str}", media_type="text/calendar", security=[{}])
    async def serve_feed(
        self,
        ctx: Ctx,
        feeds_runtime: Feeds,
        filename: FromPath[str],
        if_none_match: Annotated[str | None, HeaderParameter(name="If-None-Match")] = None,
        if_modified_since: Annotated[str | None, HeaderParameter(name="If-Modified-Since")] = None,
    ) -> Response[bytes]:
        """The calendar at ``/feeds/{token}.ics``: 404 unknown, 410 revoked, 304 unchanged."""
        token, dot, extension = filename.rpartition(".")
        if not dot or extension != "ics":
            return _response(feed_http.NOT_FOUND)
        return _response(await feeds_runtime.poll(ctx, token, if_none_match, if_modified_since))
