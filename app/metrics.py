"""R7.1: Prometheus metrics the API and workers export."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INTAKE_REQUESTS = Counter(
    "leadflow_intake_requests_total", "Intake requests by source and outcome", ["source", "outcome"])
INTAKE_LATENCY = Histogram(
    "leadflow_intake_duration_seconds", "Intake request latency, from first byte read to answer",
    ["source"], buckets=(0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5))
OUTBOX_BACKLOG = Gauge(
    "leadflow_outbox_backlog", "Outbox rows not processed after the relay grace period (-1: database down)")
