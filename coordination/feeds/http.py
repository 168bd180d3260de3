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


def asgi_headers(status: int, body: bytes, media_type: str,
                 headers: Mapping[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    """The header lines as the framework wrote them: a ``304`` has no body, so neither
    a content type nor a length."""
    lines: list[tuple[bytes, bytes]] = []
    if status != 304:
        lines += [(b"content-type", f"{media_type}; charset=utf-8".encode()),
                  (b"content-length", str(len(body)).encode())]
    lines += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    return tuple(lines)


@dataclass(frozen=True, slots=True)
class FeedAnswer:
    """Status, body and headers; the media type is completed with ``charset=utf-8``.
    Built once per version of a feed (and once for each refusal), with its header lines."""

    status: int
    body: bytes
    media_type: str
    headers: Mapping[str, str]
    raw_headers: tuple[tuple[bytes, bytes], ...] = ()

    @classmethod
    def of(cls, status: int, body: bytes, media_type: str, headers: Mapping[str, str]) -> FeedAnswer:
        return cls(status, body, media_type, headers, asgi_headers(status, body, media_type, headers))


def text_answer(status: int, text: str, headers: Mapping[str, str] | None = None) -> FeedAnswer:
    return FeedAnswer.of(status, text.encode(), "text/plain",
                         {"Cache-Control": "no-store", **(headers or {})})


NOT_FOUND = text_answer(404, TEXT_NOT_FOUND)


GONE = text_answer(410, TEXT_GONE)


#: Never a 200 with an empty calendar: clients would wipe their copy.
UNAVAILABLE = text_answer(503, TEXT_UNAVAILABLE, {"Retry-After": str(RETRY_AFTER_SECONDS)})


def calendar_answers(body: bytes, etag: str, last_modified: datetime) -> tuple[FeedAnswer, FeedAnswer]:
    """The ``200`` and the ``304`` of one version of a feed."""
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    ok = FeedAnswer.of(200, body, "text/calendar", {**headers, "Last-Modified": http_date(last_modified)})
    return ok, FeedAnswer.of(304, b"", "text/calendar", headers)
