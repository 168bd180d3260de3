"""Service metrics (Prometheus). Labels are route groups, statuses and channels, never
personal data or case ids. ``/metrics`` (coordination.api.operations) exposes them."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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


REQUEST_LATENCY = Histogram(
    "samhandling_request_seconds",
    "HTTP request latency by route group (feeds, api, pages, health, metrics, other).",
    ["group"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
