"""Dispatch metrics (Prometheus): outcomes and SMTP latency. No personal data, no case ids:
labels are channels, message kinds and outcomes only."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DISPATCH_OUTCOMES = Counter(
    "samhandling_dispatch_outcomes",
    "Messages the dispatcher finished with, by channel and outcome "
    "(sent, suppressed, retry, dead).",
    ["channel", "outcome"],
)

SMTP_LATENCY = Histogram(
    "samhandling_smtp_send_seconds",
    "Time for the relay to accept one message (SMTP transaction, connection reuse included).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def dispatch_outcome(channel: str, outcome: str, count: int = 1) -> None:
    DISPATCH_OUTCOMES.labels(channel=channel, outcome=outcome).inc(count)
