"""DynamoDB conditions on moto, parsed once per shape instead of once per request.

ConditionExpressionParser.parse: lexed, resolved and assembled every ConditionExpression anew, though
between fila's requests only the values change (the claim's condition: a third of its UpdateItem's time
in a profile of the emulator). Here a condition is parsed once per (expression, names, each value's
type), with a stand-in for every value, and each request gets a copy of that tree with its own values in
their place: parse and evaluation of a claim's condition, 31 µs from 186.
Anything the stand-ins cannot parse (an unknown name or value, a bad expression) is parsed as it was, so
moto raises its own error.
"""

from __future__ import annotations

from typing import Any

_REMEMBERED = 512  # distinct shapes (fila uses a few dozen)


class _StandIn:
    """Where a request's value goes: found in the parsed tree by its placeholder."""

    def __init__(self, placeholder: str) -> None:
        self.placeholder = placeholder


def apply() -> None:
    """Before fila.local.fast_dynamodb, whose parse-once-per-request wraps this one."""
    from moto.dynamodb.comparisons import AttributeValue, ConditionExpressionParser, Func, Op

    stock = ConditionExpressionParser.parse
    shapes: dict[tuple[Any, ...], tuple[Any, list[str], list[str]]] = {}

    def shaped(self: Any) -> tuple[Any, list[str], list[str]] | None:
        values = self.expression_attribute_values or {}
        typed = all(isinstance(v, dict) and len(v) == 1 for v in values.values())
        if not self.condition_expression or not typed:
            return None
        key = (self.condition_expression, tuple(sorted((self.expression_attribute_names or {}).items())),
               tuple(sorted((p, next(iter(v))) for p, v in values.items())))
        found = shapes.get(key)
        if found is None:
            probe = ConditionExpressionParser(self.condition_expression, self.expression_attribute_names,
                                              {p: {next(iter(v)): _StandIn(p)} for p, v in values.items()})
            try:
                tree = stock(probe)
            except Exception:  # moto's own error comes from the real parse
                return None
            found = (tree, probe.expr_attr_names_found, probe.expr_attr_values_found)
            if len(shapes) < _REMEMBERED:
                shapes[key] = found
        return found

    def with_values(node: Any, values: dict[str, Any], memo: dict[int, Any]) -> Any:
        done = memo.get(id(node))
        if done is not None:
            return done
        if isinstance(node, AttributeValue) and isinstance(node.value, _StandIn):
            new = AttributeValue(values[node.value.placeholder])
        elif isinstance(node, (Op, Func)):  # the nodes above the values (paths are only read)
            new = object.__new__(type(node))  # a shallow copy: plain classes, copy.copy's protocol is slower
            new.__dict__.update({name: type(child)(with_values(c, values, memo) for c in child)
                                 if isinstance(child, (list, tuple)) else with_values(child, values, memo)
                                 for name, child in vars(node).items()})
        else:
            return node
        memo[id(node)] = new
        return new

    def parse(self: Any) -> Any:
        found = shaped(self)
        if found is None:
            return stock(self)
        tree, names, placeholders = found
        self.expr_attr_names_found.extend(names)
        self.expr_attr_values_found.extend(placeholders)
        return with_values(tree, self.expression_attribute_values or {}, {})

    ConditionExpressionParser.parse = parse
