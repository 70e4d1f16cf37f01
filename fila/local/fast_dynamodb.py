"""DynamoDB on moto with atomic conditional writes and less work per write. Profiled on fila's claim (an
UpdateItem of six actions under a three-way condition): moto spent 28 ms of CPU on it, mostly reading
the same expression again and walking its tree ten times; with these patches, 12 ms. Each patch names
the moto function it replaces, and why.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from typing import Any

_REMEMBERED = 512  # distinct expression strings (fila uses a few dozen)
ITEM_LIMIT = 405_000  # bytes: moto's LimitedSizeDict limit (AWS's 400 KB, as moto measured it)
WRITES = threading.RLock()  # one write at a time (_atomic_writes; fila.local.dynamodb_ttl's deletes too)


def apply() -> None:
    trees = _remember_expressions()
    _walk_lighter()
    _validate_lighter(trees)
    whole_tables = _skip_copies_for_streams()
    _transactions_back_up_their_items(whole_tables)
    _serialize_items_as_they_are()
    _size_items_once()
    _atomic_writes()


def _remembered(parse: Any) -> tuple[Any, dict[str, Any]]:
    """``parse(expression)`` done once per expression (results are only read: callers copy them)."""
    seen: dict[str, Any] = {}

    def once(expression: str) -> Any:
        found = seen.get(expression)
        if found is None:
            found = parse(expression)
            if len(seen) < _REMEMBERED:
                seen[expression] = found
        return found

    return once, seen


def _remember_expressions() -> dict[str, Any]:
    """The update trees by expression (kept alive here, so no tree's id is ever reused)."""
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.parsing import expressions, tokens

    ExpressionTokenizer = tokens.ExpressionTokenizer
    UpdateExpressionParser = expressions.UpdateExpressionParser

    # ExpressionTokenizer.make_list: tokenized every UpdateExpression anew (its tokens are only read).
    stock_tokenize = ExpressionTokenizer.make_list
    tokenize, _ = _remembered(lambda e: tuple(stock_tokenize(e)))
    ExpressionTokenizer.make_list = classmethod(lambda cls, e: list(tokenize(e)))

    # UpdateExpressionParser.make: parsed every UpdateExpression twice per request. Its tree is only read
    # (find_clauses) or copied before a validator rewrites it, so one tree per expression serves all.
    parse, trees = _remembered(UpdateExpressionParser.make)
    UpdateExpressionParser.make = classmethod(lambda cls, e: parse(e))

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

    ConditionExpressionParser._lex_condition_expression = lex

    # ConditionExpressionParser.parse: ran twice per conditional write, in the response layer (to list
    # the names and values used) and in the backend, on the same request's dicts. The second parse of a
    # thread's request takes the first's result (the request's dicts are held, so their ids stay theirs).
    stock_parse = ConditionExpressionParser.parse
    last = threading.local()

    def parse_once(self: Any) -> Any:
        asked = (self.condition_expression, self.expression_attribute_names, self.expression_attribute_values)
        seen = getattr(last, "seen", None)
        if seen is not None and seen[0] == asked[0] and seen[1] is asked[1] and seen[2] is asked[2]:
            self.expr_attr_names_found.extend(seen[4])
            self.expr_attr_values_found.extend(seen[5])
            return seen[3]
        op = stock_parse(self)
        last.seen = (*asked, op, list(self.expr_attr_names_found), list(self.expr_attr_values_found))
        return op

    ConditionExpressionParser.parse = parse_once
    return trees


def _walk_lighter() -> None:
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node

    # DepthFirstTraverser.nodes_to_be_processed: built a dict of bound methods at every node of every
    # walk to read its keys, which are fixed per traverser class.
    kinds: dict[type, tuple[type, ...]] = {}

    def nodes_to_be_processed(self: Any) -> tuple[type, ...]:
        found = kinds.get(type(self))
        if found is None:
            found = kinds[type(self)] = tuple(self._processing_map())
        return found

    DepthFirstTraverser.nodes_to_be_processed = nodes_to_be_processed

    # DepthFirstTraverser.traverse_node_recursively and .process: asked ABCMeta's isinstance three times
    # per node and built the bound-method map again per processed node (a third of an UpdateItem's CPU).
    # Which function processes a node depends only on the traverser's class and the node's: look it up
    # once per pair. The walk's order and its in-place rewrites are the stock ones.
    handlers: dict[tuple[type, type], str | None] = {}
    is_node: dict[type, bool] = {}
    base_hook = DepthFirstTraverser.pre_processing_of_child

    def handler(traverser: type, kind: type) -> str | None:
        key = (traverser, kind)
        if key not in handlers:
            stock_map = traverser._processing_map(object.__new__(traverser))  # type: ignore[attr-defined]
            handlers[key] = next((f.__name__ for k, f in stock_map.items() if issubclass(kind, k)), None)
        return handlers[key]

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        kind = type(node)
        node_kind = is_node.get(kind)
        if node_kind is None:
            node_kind = is_node[kind] = issubclass(kind, Node)
        if not node_kind:
            return node
        parent_node = node.parent
        if node.children is not None:
            hook = type(self).pre_processing_of_child is not base_hook
            for i, child_node in enumerate(node.children):
                if hook:
                    self.pre_processing_of_child(node, i)
                traverse_node_recursively(self, child_node, i)
        name = handler(type(self), kind)
        if name is not None:
            node = getattr(self, name)(node)
            node.parent = parent_node
            if parent_node:
                parent_node.children[child_id] = node
        return node

    DepthFirstTraverser.traverse_node_recursively = traverse_node_recursively


def _validate_lighter(trees: dict[str, Any]) -> None:
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import Node

    # validators.deepcopy: copied each tree with the generic deepcopy (memo, reduce) before a validator
    # rewrites it; a tree's nodes hold only their type, children and parent.
    def copy_tree(node: Any, parent: Any = None) -> Any:
        if not isinstance(node, Node):
            return copy.deepcopy(node)
        twin = object.__new__(type(node))
        twin.__dict__.update(node.__dict__)
        twin.parent = parent
        if node.children is not None:
            twin.children = [copy_tree(child, twin) for child in node.children]
        return twin

    validators.deepcopy = copy_tree

    # UpdateExpressionValidator: walked each tree ten times; the first three walks (action counts,
    # overlapping paths, key attributes) depend only on the expression, its names and the table's keys,
    # so they run once per such triple.
    structural = ("ActionCountValidator", "OverlappingPathsValidator", "UpdateHashRangeKeyValidator")
    remembered = lambda tree: any(t is tree for t in trees.values())  # noqa: E731
    passed: set[tuple[Any, ...]] = set()
    stock_init = validators.UpdateExpressionValidator.__init__
    stock_validate = validators.UpdateExpressionValidator.validate

    def init(self: Any, expression: Any, expression_attribute_names: Any, *args: Any, **kwargs: Any) -> None:
        stock_init(self, expression, expression_attribute_names, *args, **kwargs)
        self.structure = (id(expression), tuple(sorted((expression_attribute_names or {}).items())),
                          tuple(self.table.table_key_attrs))
        first = tuple(type(p).__name__ for p in self.processors[:len(structural)])
        self.known = first == structural and self.structure in passed
        if self.known:
            self.processors = self.processors[len(structural):]
        self.tree = expression

    def validate(self: Any) -> Any:
        node = stock_validate(self)
        if not self.known and len(passed) < _REMEMBERED and remembered(self.tree):
            passed.add(self.structure)
        return node

    validators.UpdateExpressionValidator.__init__ = init
    validators.UpdateExpressionValidator.validate = validate


def _skip_copies_for_streams() -> threading.local:
    """DynamoDBBackend.update_item: deep-copied the item before every update, for stream records only."""
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend

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

    dynamodb_models.copy = Copy()
    DynamoDBBackend.update_item = update_item
    return no_stream


def _transactions_back_up_their_items(no_copies: threading.local) -> None:
    """DynamoDBBackend.transact_write_items: deep-copied every table it touched, whole, to roll back a
    failed transaction: its cost grew with the tables (seconds per call at a few thousand items). Back
    up the items it names instead (at most 100), and put them back if it fails."""
    from moto.dynamodb.models import DynamoDBBackend

    stock = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = [_before(self, op) for item in transact_items for op in item.values()]
        no_copies.on = True  # moto's own backup becomes the live table: a no-op on its rollback
        try:
            stock(self, transact_items)
        except Exception:
            for found in reversed([s for s in saved if s is not None]):
                _put_back(self, *found)
            raise
        finally:
            no_copies.on = False

    DynamoDBBackend.transact_write_items = transact_write_items


def _before(backend: Any, op: Any) -> tuple[str, dict[str, Any], Any] | None:
    """(table, key, a copy of the item as it is now or None); None when the operation names no item."""
    try:
        table = backend.get_table(op["TableName"])
        key = op.get("Key")
        if key is None:
            names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
            key = {name: op["Item"][name] for name in names}
        current = backend.get_item(op["TableName"], key)
    except Exception:  # a missing table or a malformed key: moto reports it, and nothing was written
        return None
    return op["TableName"], key, copy.deepcopy(current)


def _put_back(backend: Any, table: str, key: dict[str, Any], item: Any) -> None:
    if item is None:
        backend.delete_item(table, key)
    else:
        backend.put_item(table, item.to_json()["Attributes"])


_PLAIN = {"S": str, "N": str, "BOOL": bool, "NULL": bool}


def plain(value: Any) -> bool:
    """An attribute value already in DynamoDB's JSON (nothing binary, which goes out base64-encoded)."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    (kind, inner), = value.items()
    if kind in _PLAIN:
        return isinstance(inner, _PLAIN[kind])
    if kind in ("SS", "NS"):
        return isinstance(inner, list) and all(isinstance(v, str) for v in inner)
    if kind == "L":
        return isinstance(inner, list) and all(plain(v) for v in inner)
    if kind == "M":
        return isinstance(inner, dict) and all(plain(v) for v in inner.values())
    return False


def _serialize_items_as_they_are() -> None:
    """BaseJSONSerializer._serialize_type_structure: walked every attribute value of every item it sent
    member by member, through alias lookups (about 10 ms for one job's record, more than the update
    itself), to write out the same JSON it was given."""
    from moto.core.serialize import BaseJSONSerializer

    stock = BaseJSONSerializer._serialize_type_structure

    def structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and plain(value):
            self._default_serialize(serialized, value, shape, key)
        else:
            stock(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = structure


def _size_items_once() -> None:
    """Item.__init__: each attribute it set summed the sizes of all set before (LimitedSizeDict's check of
    the 400 KB limit), quadratic per item: 0.6 ms for a job's. The attributes are distinct and sizes
    not negative, so a running total crosses the limit at the same attribute, raising the same error."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict, bytesize

    def init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key, self.range_key = hash_key, range_key
        self.attrs = LimitedSizeDict()
        total = 0
        for key, value in attrs.items():
            typed = DynamoType(value)
            total += bytesize(key) + typed.size()
            if total > ITEM_LIMIT:
                raise ItemSizeTooLarge
            dict.__setitem__(self.attrs, key, typed)

    Item.__init__ = init


def _atomic_writes() -> None:
    """DynamoDBBackend's writes: checked their condition and wrote in two steps, with no lock between
    them, so two requests on two server threads could both pass the same condition. DynamoDB applies a
    conditional write atomically; every claim fila makes relies on that."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
        setattr(DynamoDBBackend, name, _serialized(getattr(DynamoDBBackend, name), WRITES))


def _serialized(write: Any, lock: Any) -> Any:
    def serialized(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return write(*args, **kwargs)

    serialized.__name__ = write.__name__
    return serialized
