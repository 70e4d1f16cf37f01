"""Structured JSON logs (Powertools Logger): one line per outcome, with correlation ids.

Never log a secret or a whole body: callers pass ids, codes and sizes only.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

logger = Logger(service="fila")
