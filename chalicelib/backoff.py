"""Retry delays: exponential (Bull's default shape), fixed, or any function of the attempt number.

A backoff is stored with its job (``to_dict``) so the consumer that retries it, possibly in another
container, computes the same delay. ``jitter`` spreads retries of jobs that failed together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

# SQS caps a message's visibility timeout at 12 hours.
MAX_DELAY_SECONDS = 12 * 60 * 60


@dataclass(frozen=True)
class Backoff:
    kind: str = "exponential"  # exponential | fixed | custom
    delay: float = 2.0  # seconds: the base (exponential) or the delay (fixed)
    cap: float = MAX_DELAY_SECONDS
    jitter: float = 0.0  # 0..1: up to this fraction of the delay is randomised away
    delays: tuple[float, ...] = ()  # custom: the delay after attempt 1, 2, …; the last repeats

    def seconds(self, attempt: int, rng: random.Random | None = None) -> int:
        """Delay before the retry that follows failed attempt number ``attempt`` (1-based)."""
        if self.kind == "exponential":
            raw = self.delay * 2 ** (attempt - 1)
        elif self.kind == "fixed":
            raw = self.delay
        else:
            raw = self.delays[min(attempt, len(self.delays)) - 1] if self.delays else self.delay
        raw = min(raw, self.cap, MAX_DELAY_SECONDS)
        if self.jitter:
            raw -= raw * self.jitter * (rng or random).random()
        return max(0, round(raw))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "delay": self.delay, "cap": self.cap, "jitter": self.jitter,
                "delays": list(self.delays)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Backoff:
        return cls(kind=data["kind"], delay=float(data["delay"]), cap=float(data["cap"]),
                   jitter=float(data["jitter"]), delays=tuple(float(d) for d in data.get("delays", ())))


def exponential(base: float = 2.0, *, cap: float = MAX_DELAY_SECONDS, jitter: float = 0.0) -> Backoff:
    """base, 2*base, 4*base, ... (Bull's ``{type: 'exponential', delay: base}``)."""
    return Backoff("exponential", base, cap, jitter)


def fixed(delay: float, *, jitter: float = 0.0) -> Backoff:
    return Backoff("fixed", delay, MAX_DELAY_SECONDS, jitter)


def custom(*delays: float, cap: float = MAX_DELAY_SECONDS) -> Backoff:
    """Explicit delays per attempt, e.g. ``custom(5, 30, 300)``; the last one repeats."""
    return Backoff("custom", delays[0] if delays else 0.0, cap, 0.0, tuple(delays))
