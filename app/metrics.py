"""R7.1: Prometheus metrics the API and workers export."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INTAKE_REQUESTS = Counter(
    "leadflow_intake_requests_total", "Intake requests by source and outcome", ["source", "outcome"])
INTAKE_LATENCY = Histogram(
    "leadflow_intake_duration_seconds", "Intake request latency, from first byte read to answer",
    ["source"], buckets=(0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5))
INTAKE_BATCH_SIZE = Histogram(
    "leadflow_intake_batch_size", "Submissions committed together in one intake transaction (group commit)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128))
INTAKE_BATCH_RETRIES = Counter(
    "leadflow_intake_batch_retries_total",
    "Intake batches that failed and were retried one submission at a time, by the error's SQLSTATE or class",
    ["reason"])
OUTBOX_BACKLOG = Gauge(
    "leadflow_outbox_backlog", "Outbox rows not processed after the relay grace period (-1: database down)")

ASSIGNMENT_STAGE = Histogram(
    "leadflow_assignment_stage_seconds", "Lead stage durations: trigger_to_match, match_to_claim, trigger_to_claim",
    ["stage"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600))
ASSIGNMENT_ROUNDS = Counter("leadflow_assignment_rounds_total", "Assignment rounds by result", ["result"])


def observe_stage(stage: str, start, end) -> None:
    if start is not None and end is not None:
        ASSIGNMENT_STAGE.labels(stage).observe(max(0.0, (end - start).total_seconds()))
