"""HTTP for feeds: entity tags, Last-Modified, 304s and the plain-text refusals."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

#: Clients revalidate every time (a 304 is cheap): a consent withdrawn must reach the
#: subscriber at their next refresh, not after a private cache's max-age has run out.
CACHE_CONTROL = "private, no-cache"


RETRY_AFTER_SECONDS = 30


_ENTITY_TAG = re.compile(r'(?:W/)?("[^"]*")')


TEXT_NOT_FOUND = "Fant ingen kalender på denne adressen.\n"


TEXT_GONE = "Denne kalenderen er trukket tilbake og blir ikke oppdatert mer.\n"


TEXT_UNAVAILABLE = "Kalenderen er midlertidig utilgjengelig. Prøv igjen om litt.\n"


# --- HTTP ------------------------------------------------------------------------------


def http_date(value: datetime) -> str:
    return format_datetime(value.astimezone(UTC), usegmt=True)


def _second(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


def next_last_modified(
    stored: datetime | None, stored_etag: str, etag: str, newest_change: datetime, now: datetime
) -> datetime:
    """Last-Modified never moves backwards, and moves forwards with every new version,
    also when the change left no newer ``updated_at`` behind (a meeting deleted, a consent
    withdrawn, an answer recorded): then it becomes the time the new version was found."""
    candidate = _second(newest_change)
    if stored is None:
        return candidate
    if etag == stored_etag or candidate > stored:
        return max(candidate, stored)
    return max(_second(now), stored + timedelta(seconds=1))


def etag_matches(header: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: ``*`` or a list of tags, compared weakly."""
    if header.strip() == "*":
        return True
    return any(tag == etag for tag in _ENTITY_TAG.findall(header))


def not_modified(
    if_none_match: str | None, if_modified_since: str | None, etag: str, last_modified: datetime
) -> bool:
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            return False
        return last_modified <= since
    return False


@dataclass(frozen=True, slots=True)
class FeedAnswer:
    """Status, body and headers; the media type is completed with ``charset=utf-8``."""

    status: int
    body: bytes
    media_type: str
    headers: dict[str, str]


def text_answer(status: int, text: str, headers: Mapping[str, str] | None = None) -> FeedAnswer:
    return FeedAnswer(status, text.encode(), "text/plain",
                      {"Cache-Control": "no-store", **(headers or {})})


def unavailable() -> FeedAnswer:
    """Never a 200 with an empty calendar: clients would wipe their copy."""
    return text_answer(503, TEXT_UNAVAILABLE, {"Retry-After": str(RETRY_AFTER_SECONDS)})
