"""DynamoDB on moto with atomic conditional writes and less work per write (profiled: about half its
time went to reading the same few expression strings again and again). Each patch names the moto
function it replaces, and why.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from typing import Any

_REMEMBERED = 512  # distinct expression strings (fila uses a few dozen)


def apply() -> None:
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.parsing.tokens import ExpressionTokenizer

    # ExpressionTokenizer.make_list: tokenized every UpdateExpression anew (its tokens are only read).
    stock_tokenize = ExpressionTokenizer.make_list.__func__  # type: ignore[attr-defined]
    tokens: dict[str, tuple[Any, ...]] = {}

    def make_list(cls: Any, expression: str) -> list[Any]:
        found = tokens.get(expression)
        if found is None:
            found = tuple(stock_tokenize(cls, expression))
            if len(tokens) < _REMEMBERED:
                tokens[expression] = found
        return list(found)

    ExpressionTokenizer.make_list = classmethod(make_list)  # type: ignore[method-assign,assignment]

    # ConditionExpressionParser._lex_condition_expression: lexed every ConditionExpression anew (names
    # and values are resolved after lexing, per call).
    stock_lex = ConditionExpressionParser._lex_condition_expression
    lexed: dict[str, tuple[Any, ...]] = {}

    def lex(self: Any) -> deque[Any]:
        found = lexed.get(self.condition_expression)
        if found is None:
            found = tuple(stock_lex(self))
            if len(lexed) < _REMEMBERED:
                lexed[self.condition_expression] = found
        return deque(node._replace(children=list(node.children)) for node in found)

    ConditionExpressionParser._lex_condition_expression = lex  # type: ignore[method-assign]

    # DynamoDBBackend.update_item: deep-copied the item before every update, for stream records only.
    stock_update = DynamoDBBackend.update_item
    no_stream = threading.local()

    class Copy:
        """moto's models module's ``copy``, whose deepcopy skips the item when no stream wants it."""

        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if getattr(no_stream, "on", False) else copy.deepcopy(value, memo)

    def update_item(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        no_stream.on = self.get_table(table_name).stream_shard is None
        try:
            return stock_update(self, table_name, *args, **kwargs)
        finally:
            no_stream.on = False

    dynamodb_models.copy = Copy()  # type: ignore[assignment]
    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]

    # DynamoDBBackend's writes: checked their condition and wrote in two steps, with no lock between
    # them, so two requests on two server threads could both pass the same condition. DynamoDB
    # applies a conditional write atomically; every claim fila makes relies on that.
    one_at_a_time = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
        setattr(DynamoDBBackend, name, _serialized(getattr(DynamoDBBackend, name), one_at_a_time))


def _serialized(write: Any, lock: Any) -> Any:
    def serialized(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return write(*args, **kwargs)

    serialized.__name__ = write.__name__
    return serialized
