"""UpdateItem on moto without its validator's tree walks, for update expressions whose every action names
one top-level attribute: ``SET #a = v`` and ``REMOVE #a``, where ``v`` is a value placeholder, a
top-level attribute, ``if_not_exists``, ``list_append``, or ``+``/``-`` of those. That is every update fila
writes.

moto's UpdateExpressionValidator copies the expression's tree and walks it seven times per request (after
fast_dynamodb's patches): a quarter of the DynamoDB process's CPU under claim-heavy load. For these
expressions a plan read once from the tree works out each request's values and sets them on the item as
moto's executor does. Whatever the plan could judge differently from moto (a missing attribute or value,
an operand of the wrong type, a key attribute's type or empty string) goes to moto's own validator, which
gives its own answer or error. An expression is planned only after it passed moto's validator once with
the same names and table keys (the checks that depend on nothing else: action counts, overlapping paths,
key attributes, reserved words).

``Node.find_clauses``: the response layer walks each request's update tree twice to list the names and
values it uses (45 µs for a claim's); fast_dynamodb hands every request of one expression the same tree,
so each tree's lists are kept, beside the tree itself (its id cannot be reused while it is held).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

from fila.local.fast_dynamodb import ITEM_LIMIT

_REMEMBERED = 512  # (expression, names, keys) shapes; fila uses a few dozen
_MISSING = object()  # an attribute the item does not have

Plan = list[tuple[str, str, Any, Any]]  # ("set" | "remove", attribute, value spec, the path's first token)


def apply() -> None:
    _remember_clauses()
    from moto.dynamodb import models

    stock_validator, stock_executor = models.UpdateExpressionValidator, models.UpdateExpressionExecutor
    plans: dict[tuple[Any, ...], tuple[Any, Plan | None]] = {}

    def validator(expression: Any, expression_attribute_names: Any, expression_attribute_values: Any,
                  item: Any, table: Any) -> Any:
        names = expression_attribute_names or {}

        def stock() -> Any:
            return stock_validator(expression, expression_attribute_names=expression_attribute_names,
                                   expression_attribute_values=expression_attribute_values,
                                   item=item, table=table)

        shape = (id(expression), tuple(sorted(names.items())), tuple(table.table_key_attrs))
        known = plans.get(shape)
        if known is not None and known[0] is expression:  # (the tree is held there, so its id is its own)
            plan = known[1]
            return _Planned(plan, expression_attribute_values or {}, item, table, stock) if plan else stock()

        def passed() -> None:
            if len(plans) < _REMEMBERED:
                plans[shape] = (expression, _plan(expression, names))

        return _FirstSight(stock(), passed)

    # moto.dynamodb.models.UpdateExpressionValidator / UpdateExpressionExecutor, as update_item calls them
    models.UpdateExpressionValidator = validator
    models.UpdateExpressionExecutor = lambda ast, item, names: ast if isinstance(ast, _Planned) \
        else stock_executor(ast, item, names)


class _FirstSight:
    """moto's validator, and the plan remembered once it passed."""

    def __init__(self, stock: Any, passed: Callable[[], None]) -> None:
        self.stock, self.passed = stock, passed

    def validate(self) -> Any:
        node = self.stock.validate()
        self.passed()
        return node


class _Planned:
    """An update worked out by its plan: update_item validates, normalizes and executes it as moto's tree."""

    def __init__(self, plan: Plan, values: dict[str, Any], item: Any, table: Any,
                 stock: Callable[[], Any]) -> None:
        self.plan, self.values, self.item, self.table, self.stock = plan, values, item, table, stock
        self.changes: list[tuple[str, Any]] = []

    def validate(self) -> Any:
        try:
            self.changes = [(name, None if kind == "remove" else self._checked(spec, first))
                            for kind, name, spec, first in self.plan]
        except Exception:  # moto's validator reports it, or (finding nothing wrong) does the update
            return self.stock().validate()
        return self

    def normalize(self) -> None:
        """Actions on distinct top-level attributes: their order is already moto's."""

    def execute(self) -> None:
        """As moto's executor, whose every SET re-summed the whole item for the size limit
        (LimitedSizeDict.__setitem__): here one sum, kept as the changes are made, meets the same check."""
        from moto.dynamodb.exceptions import ItemSizeTooLarge
        from moto.dynamodb.models.dynamo_type import bytesize

        attrs = self.item.attrs
        total = sum(bytesize(name) + _size(value) for name, value in attrs.items())
        for name, value in self.changes:
            old = attrs.get(name, _MISSING)
            held = 0 if old is _MISSING else bytesize(name) + _size(old)
            if value is None:
                attrs.pop(name, None)
                total -= held
                continue
            added = bytesize(name) + value.size()
            if total + added > ITEM_LIMIT:
                raise ItemSizeTooLarge
            dict.__setitem__(attrs, name, value)
            total += added - held

    def _checked(self, spec: Any, first: str) -> Any:
        """The value a SET assigns, refused where moto's TypeMismatch and EmptyStringKeyValue validators
        would refuse it (they compare the path's first token, a placeholder itself if it is one)."""
        value = self._value(spec)
        if value is _MISSING:
            raise LookupError("an attribute the item lacks")
        if any(d["AttributeName"] == first and d["AttributeType"] != value.type for d in self.table.attr):
            raise TypeError("a key attribute's type")
        if not value.value and value.type in ("S", "B") and first in self.table.attribute_keys:
            raise ValueError("an empty key attribute")
        return value

    def _value(self, spec: Any) -> Any:
        from moto.dynamodb.models.dynamo_type import DynamoType

        kind = spec[0]
        if kind == "value":
            return DynamoType(self.values[spec[1]])
        if kind == "path":
            return self.item.attrs.get(spec[1], _MISSING)
        first, second = self._value(spec[1]), self._value(spec[2])  # moto resolves both, used or not
        if kind == "if_not_exists":
            return second if first is _MISSING else first
        if first is _MISSING or second is _MISSING:
            raise LookupError("an operand the item lacks")
        if kind == "list_append":
            if not (first.is_list() and second.is_list()):
                raise TypeError("list_append of a non-list")
            joined = copy.deepcopy(first)
            joined.value.extend(second.value)
            return joined
        return first + second if kind == "+" else first - second


def _remember_clauses() -> dict[tuple[int, tuple[type, ...]], tuple[Any, list[Any]]]:
    """What it keeps, by (tree id, clause types): the tree and its clauses."""
    from moto.dynamodb.parsing.ast_nodes import Node

    stock = Node.find_clauses
    kept: dict[tuple[int, tuple[type, ...]], tuple[Any, list[Any]]] = {}
    walking = threading.local()  # the walk's own calls on the children are not kept

    def find_clauses(self: Any, clause_types: Any) -> Any:
        if getattr(walking, "now", False):
            return stock(self, clause_types)
        key = (id(self), tuple(clause_types))
        found = kept.get(key)
        if found is not None and found[0] is self:
            return list(found[1])
        walking.now = True
        try:
            clauses = stock(self, clause_types)
        finally:
            walking.now = False
        if len(kept) < _REMEMBERED:
            kept[key] = (self, list(clauses))
        return clauses

    Node.find_clauses = find_clauses
    return kept


def _size(value: Any) -> int:
    """An attribute value's share of the item size, as LimitedSizeDict counts it."""
    from moto.dynamodb.models.dynamo_type import DynamoType, bytesize

    return value.size() if type(value) is DynamoType else bytesize(str(value))


def _plan(tree: Any, names: dict[str, str]) -> Plan | None:
    """The expression's actions as specs, or None where one is not of the planned kinds."""
    from moto.dynamodb.parsing import ast_nodes as ast

    plan: Plan = []
    kinds = [ast.UpdateExpressionSetAction, ast.UpdateExpressionAddAction, ast.UpdateExpressionRemoveAction,
             ast.UpdateExpressionDeleteAction]
    for action in tree.find_clauses(kinds):
        target = _attribute(action.children[0], names)
        if target is None:
            return None
        if type(action) is ast.UpdateExpressionRemoveAction:
            plan.append(("remove", target, None, None))
            continue
        spec = _spec(action.children[1], names) if type(action) is ast.UpdateExpressionSetAction else None
        if spec is None:
            return None
        plan.append(("set", target, spec, action.children[0].children[0].children[0]))
    return plan


def _attribute(path: Any, names: dict[str, str]) -> str | None:
    """A path of one top-level attribute, by name."""
    from moto.dynamodb.parsing import ast_nodes as ast

    if type(path) is not ast.UpdateExpressionPath or len(path.children) != 1:
        return None
    (token,) = path.children
    if type(token) is ast.ExpressionAttributeName:
        return names.get(token.get_attribute_name_placeholder())
    return token.get_attribute_name() if type(token) is ast.ExpressionAttribute else None


def _spec(node: Any, names: dict[str, str]) -> Any:
    from moto.dynamodb.parsing import ast_nodes as ast

    kind = type(node)
    if kind is ast.ExpressionAttributeValue:
        return ("value", node.get_value_name())
    if kind is ast.UpdateExpressionPath:
        name = _attribute(node, names)
        return None if name is None else ("path", name)
    if kind is ast.UpdateExpressionValue and len(node.children) == 1:
        return _spec(node.children[0], names)
    if kind is ast.UpdateExpressionValue and len(node.children) == 3:
        operator = node.children[1]
        if type(operator) is not ast.ExpressionValueOperator:
            return None
        parts = (operator.get_operator(), node.children[0], node.children[2])
    elif kind is ast.UpdateExpressionFunction and len(node.children) == 3:
        parts = (node.get_function_name(), node.children[1], node.children[2])
        if parts[0] == "if_not_exists" and type(parts[1]) is not ast.UpdateExpressionPath:
            return None
    else:
        return None
    if parts[0] not in ("+", "-", "if_not_exists", "list_append"):
        return None
    first, second = _spec(parts[1], names), _spec(parts[2], names)
    return None if first is None or second is None else (parts[0], first, second)
