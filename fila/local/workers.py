"""Everything AWS runs around the app besides HTTP: SQS pollers, schedules and TTL expiry."""

from __future__ import annotations

import boto3
from chalice.app import ScheduledEventConfig, SQSEventConfig

from chalicelib.settings import resource_name
from fila.local.chalice_app import LoadedApp
from fila.local.event_sources import SqsEventSource
from fila.local.scheduler import Scheduler
from fila.local.ttl import Reaper
from fila.resources import resources


class Workers:
    def __init__(self, loaded: LoadedApp, wait_seconds: int = 5) -> None:
        app = loaded.app
        sqs = boto3.client("sqs")
        self.sources: list[SqsEventSource] = []
        self.scheduler = Scheduler()
        for config in app.event_sources:
            handler = app.handler_map[config.name]
            if isinstance(config, SQSEventConfig):
                url = sqs.get_queue_url(QueueName=config.queue)["QueueUrl"]
                self.sources.append(SqsEventSource(
                    config.name, handler, url,
                    batch_size=config.batch_size,
                    batching_window=config.maximum_batching_window_in_seconds,
                    concurrency=config.maximum_concurrency,
                    wait_seconds=wait_seconds,
                    timeout_seconds=loaded.lambda_timeout(config.name),
                ))
            elif isinstance(config, ScheduledEventConfig):
                expression = config.schedule_expression
                text = expression if isinstance(expression, str) else expression.to_string()
                self.scheduler.add(config.name, text, handler)
        self.reaper = Reaper({resource_name(key): spec["ttl"]
                              for key, spec in resources()["tables"].items() if spec.get("ttl")})

    def start(self) -> None:
        for source in self.sources:
            source.start()
        self.scheduler.start()
        self.reaper.start()

    def stop(self) -> None:
        for source in self.sources:
            source.stopping.set()
        self.scheduler.stop()
        self.reaper.stop()
        for source in self.sources:
            source.stop(timeout=3.0)
