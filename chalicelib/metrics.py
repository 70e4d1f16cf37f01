"""CloudWatch metrics in Embedded Metric Format (Powertools): one log line per outcome, no API call.

Namespace ``fila``, dimensioned by stage plus what the outcome is about (source, job name, outcome).
DLQ depth and message age come from SQS's own CloudWatch metrics (the template's alarms use them).
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from chalicelib.jobs import Job
from chalicelib.settings import stage
from chalicelib.system import Hook

NAMESPACE = "fila"


def record(dimensions: dict[str, str], *, count: str, milliseconds: dict[str, float] | None = None) -> None:
    """One EMF line: ``count`` += 1, plus any timings, under these dimensions."""
    metrics = EphemeralMetrics(namespace=NAMESPACE, service="fila")  # per call: safe across threads
    metrics.add_dimension(name="stage", value=stage())
    for name, text in dimensions.items():
        metrics.add_dimension(name=name, value=text[:250])
    metrics.add_metric(name=count, unit=MetricUnit.Count, value=1)
    for name, ms in (milliseconds or {}).items():
        metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=round(ms, 3))
    metrics.flush_metrics()


class JobMetrics(Hook):
    """``Jobs`` by job name and outcome: completed, retried, failed."""

    def completed(self, job: Job) -> None:
        record({"job": job.name, "outcome": "completed"}, count="Jobs")

    def retried(self, job: Job, error: BaseException) -> None:
        record({"job": job.name, "outcome": "retried"}, count="Jobs")

    def failed(self, job: Job, error: BaseException) -> None:
        record({"job": job.name, "outcome": "failed"}, count="Jobs")
