"""Calendar subscriptions: the list, and the addresses shown once after creation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from coordination.schemas import ContactOut, FeedCreated, FeedOut
from coordination.web import texts as t
from coordination.web.views.common import Choice, names_of


@dataclass(frozen=True, slots=True)
class FeedRow:
    id: int
    scope: str
    label: str
    contact: str
    created: str
    last_seen: str
    revoked: str


@dataclass(frozen=True, slots=True)
class NewFeed:
    """Shown once, right after creation: the token is in these addresses and nowhere else."""

    label: str
    url: str
    webcal: str
    outlook: str
    google: str


def feed_rows(feeds: Sequence[FeedOut], names: Mapping[int, str]) -> list[FeedRow]:
    return [
        FeedRow(f.id, t.FEED_SCOPE.get(f.scope, f.scope), f.label,
                names.get(f.contact_id, "") if f.contact_id else "", t.when(f.created_at),
                t.when(f.last_seen_at) if f.last_seen_at else "Ikke hentet ennå",
                t.when(f.revoked_at) if f.revoked_at else "")
        for f in reversed(feeds)
    ]


def new_feed(created: FeedCreated, name: str) -> NewFeed:
    return NewFeed(
        label=name,
        url=created.url,
        webcal=created.webcal_url,
        outlook=("https://outlook.office.com/calendar/0/addfromweb?url=" + quote(created.url, safe="")
                 + "&name=" + quote(name, safe="")),
        google="https://calendar.google.com/calendar/render?cid=" + quote(created.webcal_url, safe=""),
    )


def contact_choices(contacts: Sequence[ContactOut]) -> list[Choice]:
    names = names_of(contacts)
    return [Choice(str(c.id), names[c.id]) for c in contacts if c.active]
