"""What every page's view shares: the language, badges, choices and the parsing of form fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from calendars.zone import OSLO
from coordination.consent.policy import Reason
from coordination.consent.texts import contact_label, describe
from coordination.domain import Language
from coordination.levels import Level
from coordination.models import Contact
from coordination.scheduling.enums import OPEN_STATUSES
from coordination.schemas import ContactOut
from coordination.web import texts as t

NB = Language.NB
#: A contact's own feed shows at most the purpose of a meeting (``coordination.feeds``).
FEED_CAP = Level.PURPOSE
OPEN = OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class Badge:
    """A state in words and a tone for the colour; the words alone carry the meaning."""

    text: str
    tone: str


_TONE = {
    "granted": "ok", "partial": "warn", "missing": "bad", "withdrawn": "bad", "expired": "warn",
    "not_needed": "neutral",
}


def badge(state: str) -> Badge:
    return Badge(t.SECTOR_STATE.get(state, state), _TONE.get(state, "neutral"))


def reason_texts(reasons: Sequence[Reason], names: Mapping[int, str]) -> list[str]:
    return [describe(r, NB, names) for r in reasons]


def names_of(contacts: Sequence[Contact] | Sequence[ContactOut]) -> dict[int, str]:
    return {c.id: contact_label(c.name, c.role, c.role_label, NB) for c in contacts if c.id is not None}


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    text: str


def oslo_instant(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=OSLO)


def parse_day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise t.FormError(name, "Skriv datoen som åååå-mm-dd.") from None


def parse_clock(text: str, name: str) -> time:
    try:
        hours, minutes = text.strip().split(":")[:2]
        return time(int(hours), int(minutes))
    except ValueError:
        raise t.FormError(name, "Skriv klokkeslettet som tt:mm.") from None


def end_of_day(day: date) -> datetime:
    """"Valid to and including" a day: until Oslo midnight after it."""
    return oslo_instant(day + timedelta(days=1), time(0))
