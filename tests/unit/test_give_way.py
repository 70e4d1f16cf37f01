"""A lower lane's view of its higher lane (fila.local.workers.LaneBusy), without SQS: a higher lane is
busy while it holds batches, while SQS shows it visible messages, and before its first receive returned."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from fila.local.workers import LaneBusy


class Sqs:
    def __init__(self, visible: int) -> None:
        self.visible, self.asked = visible, 0

    def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
        self.asked += 1
        return {"Attributes": {"ApproximateNumberOfMessages": str(self.visible)}}


def higher(visible: int = 0, held: int = 0, polled: bool = True) -> Any:
    first_pass = threading.Event()
    if polled:
        first_pass.set()
    return SimpleNamespace(held=held, polled=first_pass, sqs=Sqs(visible), queue_url="q")


def test_an_idle_higher_lane_lets_the_lower_one_run() -> None:
    lane = higher()
    assert LaneBusy(lane)() is False and lane.sqs.asked == 1


def test_a_higher_lane_with_visible_messages_or_held_batches_is_busy() -> None:
    assert LaneBusy(higher(visible=3))() is True
    assert LaneBusy(higher(held=1))() is True


def test_a_higher_lane_whose_first_receive_has_not_returned_is_busy() -> None:
    """That receive may already have hidden the messages in SQS while ``held`` does not count them:
    asking SQS then says idle, and the lower lane took a second batch ahead of them (a CI failure)."""
    lane = higher(polled=False)
    assert LaneBusy(lane)() is True and lane.sqs.asked == 0
    lane.polled.set()
    assert LaneBusy(lane)() is False
