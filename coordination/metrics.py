"""Service metrics (Prometheus). Labels are route groups, statuses and channels, never
personal data or case ids. ``/metrics`` (coordination.api.operations) exposes them."""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import REGISTRY, Counter, Gauge, disable_created_metrics
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.pool import Pool, QueuePool

from coordination.outbox.enums import OutboxStatus
from notifications.metrics import DISPATCH_OUTCOMES
from notifications.ports import Channel, Settle

# The *_created series double the text for no use of ours (a counter's start is the process's).
disable_created_metrics()  # type: ignore[no-untyped-call]

FEED_ANSWERS = Counter(
    "samhandling_feed_answers",
    "Feed polls answered, by HTTP status (200, 304, 404, 410, 503).",
    ["status"],
)

FEED_RENDERS = Counter(
    "samhandling_feed_renders",
    "Feeds rendered from the database (cache misses), by outcome (new_version, same_bytes).",
    ["outcome"],
)


def feed_answer(status: int) -> None:
    FEED_ANSWERS.labels(status=str(status)).inc()


def feed_render(outcome: str) -> None:
    FEED_RENDERS.labels(outcome=outcome).inc()


class _Latency:
    """One route group's latency histogram in plain numbers. The request middleware observes
    every request, the warm feed poll included, and always on the event loop's thread;
    prometheus-client's Histogram takes two locks per observation, about 2 µs, a sizeable part
    of a warm poll. The scrape reads these numbers as an ordinary histogram."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds


class _RequestLatency(Collector):
    """``samhandling_request_seconds{group}``, from one :class:`_Latency` per route group."""

    def __init__(self, groups: Iterable[str]) -> None:
        self._groups = {group: _Latency() for group in groups}

    def labels(self, *, group: str) -> _Latency:
        return self._groups[group]

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            "samhandling_request_seconds",
            "HTTP request latency by route group (feeds, api, pages, health, metrics, other).",
            labels=["group"])
        for group, latency in self._groups.items():
            cumulative = list(itertools.accumulate(latency.counts))
            buckets = [(str(bound), count) for bound, count in zip(LATENCY_BUCKETS, cumulative, strict=False)]
            family.add_metric([group], [*buckets, ("+Inf", cumulative[-1])], latency.total)
        yield family


LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
GROUPS = ("feeds", "api", "pages", "health", "metrics", "other")
REQUEST_LATENCY = _RequestLatency(GROUPS)
REGISTRY.register(REQUEST_LATENCY)

#: The route groups, by the first segment of the path (``route_group``); ``other`` for the rest.
ROUTE_GROUPS: dict[str, str] = {
    "feeds": "feeds",
    "health": "health",
    "metrics": "metrics",
    **dict.fromkeys(("cases", "users", "units", "alerts", "schema", "sms"), "api"),
    **dict.fromkeys(("", "saker", "enhet", "kalender", "varsler", "logg-inn", "logg-ut", "logget-ut",
                     "answer", "static"), "pages"),
}
_LATENCY_BY_GROUP = {group: REQUEST_LATENCY.labels(group=group) for group in GROUPS}


def route_group(path: str) -> str:
    """The group a request path belongs to: a fixed word, never a part of the path itself."""
    first = path[1:].split("/", 1)[0]
    return ROUTE_GROUPS.get(first, "other")


def request_latency(group: str, seconds: float) -> None:
    _LATENCY_BY_GROUP[group].observe(seconds)


OUTBOX_DEPTH = Gauge(
    "samhandling_outbox_depth",
    "Outbox rows waiting (pending), held by a dispatcher (sending) or given up (dead), by channel; "
    "read from the database at scrape time. Sent and suppressed rows are history: see "
    "samhandling_dispatch_outcomes_total.",
    ["status", "channel"],
)

OUTBOX_OLDEST_DUE_AGE = Gauge(
    "samhandling_outbox_oldest_due_age_seconds",
    "How long the oldest pending message has been due (0 when none is, NaN when the database did not "
    "answer): the dispatcher's lag.",
)

FEED_CACHE_TRUSTED = Gauge(
    "samhandling_feed_cache_trusted",
    "1 while warm feed polls are answered from memory (PostgreSQL: the change channel is up; SQLite: "
    "always); 0 while every poll reads the database because the channel is down.",
)

DATABASE_UP = Gauge(
    "samhandling_database_up",
    "1 when the scrape's database query answered, 0 when it did not (the outbox gauges are then "
    "left out).",
)

DB_POOL_SIZE = Gauge("samhandling_db_pool_size", "Connections the database pool keeps (its size).")
DB_POOL_CHECKED_OUT = Gauge("samhandling_db_pool_checked_out", "Pool connections in use right now.")
DB_POOL_OVERFLOW = Gauge("samhandling_db_pool_overflow",
                         "Connections open beyond the pool's size right now (up to its max_overflow).")


@dataclass(frozen=True, slots=True)
class OutboxGroup:
    """One row of the scrape's outbox query."""

    status: str
    channel: str
    count: int
    earliest_attempt: datetime | None


def observe_outbox(groups: Iterable[OutboxGroup], statuses: Iterable[str], channels: Iterable[str],
                   now: datetime) -> None:
    """Set the outbox gauges from the scrape's query; every (status, channel) is written, zero
    when absent, so that a drained queue reads 0 rather than its last value."""
    counts = {(status, channel): 0 for status in statuses for channel in channels}
    oldest: datetime | None = None
    for group in groups:
        counts[(group.status, group.channel)] = group.count
        due = group.earliest_attempt
        if group.status == OutboxStatus.PENDING and due is not None and due <= now:
            oldest = due if oldest is None else min(oldest, due)
    for (status, channel), count in counts.items():
        OUTBOX_DEPTH.labels(status=status, channel=channel).set(count)
    OUTBOX_OLDEST_DUE_AGE.set((now - oldest).total_seconds() if oldest is not None else 0.0)
    DATABASE_UP.set(1)


def database_down() -> None:
    """The scrape's query failed: say so, and show no outbox figures rather than stale ones."""
    OUTBOX_DEPTH.clear()
    OUTBOX_OLDEST_DUE_AGE.set(math.nan)
    DATABASE_UP.set(0)


def observe_pool(pool: Pool) -> None:
    """The pool's use now; a pool without a size (SQLite in memory) shows nothing."""
    if isinstance(pool, QueuePool):
        DB_POOL_SIZE.set(pool.size())
        DB_POOL_CHECKED_OUT.set(pool.checkedout())
        DB_POOL_OVERFLOW.set(max(0, pool.overflow()))


def _zeros() -> None:
    """Every known series from the start, at 0: a rate needs the zero before the first event,
    and a scraper sees the families before anything happened."""
    for status in (200, 304, 404, 410, 503):
        FEED_ANSWERS.labels(status=str(status))
    for outcome in ("new_version", "same_bytes"):
        FEED_RENDERS.labels(outcome=outcome)
    for channel in Channel:
        for outcome in Settle:  # what the dispatcher counts each finished row as
            DISPATCH_OUTCOMES.labels(channel=channel.value, outcome=outcome.value)


_zeros()
