"""fila.local.fast_updates works out planned updates as moto's validator and executor do: each scenario
runs against moto's own server and the patched emulator, and every answer (items, returned values, error
codes and messages) must be the same. Each expression is used three times or more, since a plan is
made after the first use passes moto's validator; the item states and values then vary under it, so
that every case the plan hands back to moto is met on the planned path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_fast_dynamodb import Scenario, answer, key, side_by_side

pytestmark = pytest.mark.xdist_group("stock-moto")

ONE: dict[str, Any] = {"N": "1"}
ZERO: dict[str, Any] = {"N": "0"}


@pytest.fixture
def twin(stock_moto: str, aws_endpoint: str) -> Callable[[Scenario], None]:
    return lambda scenario: side_by_side(stock_moto, aws_endpoint, scenario)


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return answer(call())
    except ClientError as err:
        return err.response["Error"]["Code"], err.response["Error"]["Message"]


def updater(ddb: Any, table: str) -> Callable[..., Any]:
    def update(n: int, expression: str, values: dict[str, Any] | None = None,
               names: dict[str, str] | None = None, returns: str = "ALL_NEW") -> Any:
        extra = {"ExpressionAttributeNames": names} if names else {}
        if values:
            extra["ExpressionAttributeValues"] = values
        return outcome(lambda: ddb.update_item(TableName=table, Key=key(n), UpdateExpression=expression,
                                               ReturnValues=returns, **extra))
    return update


def test_the_updates_fila_writes(twin: Callable[[Scenario], None]) -> None:
    """A claim's and a settle's shapes, on existing items and on keys with no item yet."""
    claim = ("SET #s = :s, #lock = :lock, #at = :at, #by = :by, #n = if_not_exists(#n, :zero) + :one "
             "REMOVE #due")
    settle = "SET #s = :s, #at = :at, #log = list_append(if_not_exists(#log, :empty), :entries) REMOVE #lock"
    claim_names = {"#s": "status", "#lock": "lock_until", "#at": "updated_at", "#by": "claimed_by",
                   "#n": "attempts", "#due": "due_at"}
    settle_names = {"#s": "status", "#at": "updated_at", "#log": "logs", "#lock": "lock_until"}

    def scenario(ddb: Any, table: str) -> Any:
        update, out = updater(ddb, table), []
        for n in (1, 2, 3, 4):
            if n % 2:
                ddb.put_item(TableName=table, Item={**key(n), "status": {"S": "waiting"}, "due_at": {"N": "7"}})
            for attempt in range(3):
                stamp = {":at": {"S": f"2026-12-02T00:0{attempt}"}, ":s": {"S": "active"}}
                claimed = {**stamp, ":lock": {"N": "99.5"}, ":by": {"S": f"t{attempt}"}, ":zero": ZERO, ":one": ONE}
                settled = {**stamp, ":empty": {"L": []}, ":entries": {"L": [{"S": f"e{attempt}"}]}}
                out.append(update(n, claim, claimed, claim_names))
                out.append(update(n, settle, settled, settle_names, returns=("NONE", "UPDATED_NEW", "ALL_OLD")[attempt]))
        return out + [answer(ddb.get_item(TableName=table, Key=key(n))) for n in (1, 2, 3, 4)]
    twin(scenario)


def test_what_moto_refuses_on_the_planned_path(twin: Callable[[Scenario], None]) -> None:
    """Each case the plan gives back to moto's validator, met after the same expression and names passed:
    items lacking an attribute or holding one of another type, no item at all, values of a wrong type
    or not given."""
    counter: dict[str, Any] = {":zero": ZERO, ":one": ONE}
    cases: list[tuple[str, dict[str, str], dict[str, Any] | None, list[dict[str, Any] | None]]] = [
        ("SET #t = if_not_exists(#a, :zero) + :one", {"#t": "t", "#a": "n"}, counter,
         [{**counter, ":one": {"S": "x"}}, {":zero": ZERO}]),
        ("SET #t = #a - :one", {"#t": "t", "#a": "n"}, {":one": ONE}, [{":one": {"SS": ["a"]}}]),
        ("SET #t = list_append(#a, :more)", {"#t": "t", "#a": "l"}, {":more": {"L": [ONE]}},
         [{":more": ONE}, {":more": {"S": ""}}]),
        ("SET #t = if_not_exists(#t, #a)", {"#t": "fresh", "#a": "m"}, None, []),
        ("SET #t = #a", {"#t": "copy", "#a": "s"}, None, []),
    ]

    def scenario(ddb: Any, table: str) -> Any:
        update, out = updater(ddb, table), []
        ddb.put_item(TableName=table, Item={**key(1), "n": {"N": "1.5"}, "s": {"S": "text"}, "l": {"L": []},
                                            "m": {"M": {"a": ONE}}})
        ddb.put_item(TableName=table, Item={**key(2), "n": {"S": "text"}, "l": {"S": "text"}, "s": ONE})
        ddb.put_item(TableName=table, Item=key(3))
        for expression, names, values, other_values in cases:
            out += [update(n, expression, values, names) for n in (1, 1, 1, 2, 3, 9)]  # 9: no item
            out += [update(1, expression, other, names) for other in other_values]
        return [*out, sorted(map(str, ddb.scan(TableName=table)["Items"]))]
    twin(scenario)


def test_key_attributes_of_an_index_keep_their_type_and_are_never_empty(twin: Callable[[Scenario], None]) -> None:
    """moto compares the path's first token with the attribute definitions: a plain name is checked, a
    placeholder is not (a quirk the plan keeps, so the two answer alike)."""
    def scenario(ddb: Any, table: str) -> Any:
        update = updater(ddb, table)
        values = [{":v": {"S": "x"}}, {":v": {"S": "y"}}, {":v": {"S": "z"}}, {":v": ONE}, {":v": {"S": ""}},
                  {":v": {"S": "w"}}]
        return ([update(1, "SET g = :v", v) for v in values]
                + [update(2, "SET #g = :v", v, {"#g": "g"}) for v in values]
                + [update(3, "SET #x = :v", v, {"#x": name}) for name in ("a", "a", "a", "sk") for v in values[:1]]
                + [sorted(map(str, ddb.scan(TableName=table)["Items"]))])
    twin(scenario)


def test_an_update_past_the_size_limit_is_refused_after_it_was_planned(twin: Callable[[Scenario], None]) -> None:
    """moto checks the 405,000-byte limit (names and values) at each SET, in the expression's order: an
    item of 400,010 bytes (its key's 7, ``big``'s 3 + 400,000) has 4,990 left, and each case sits at a
    byte either side of what is left, after a replaced attribute or a REMOVE before the SET."""
    set_first = "SET #more = :more, #also = :also REMOVE #gone"
    remove_first = "REMOVE #gone SET #more = :more, #also = :also"
    names = {"#more": "more", "#also": "also", "#gone": "gone"}

    def scenario(ddb: Any, table: str) -> Any:
        update, out, n = updater(ddb, table), [], 0

        def case(expression: str, more_size: int, also_size: int, **held: int) -> None:
            nonlocal n
            n += 1
            ddb.put_item(TableName=table, Item={**key(n), "big": {"S": "x" * 400_000},
                                                **{k: {"S": k[0] * size} for k, size in held.items()}})
            values = {":more": {"S": "y" * more_size}, ":also": {"S": "z" * also_size}}
            out.append(update(n, expression, values, names, returns="UPDATED_NEW"))
            out.append(answer(ddb.get_item(TableName=table, Key=key(n), ProjectionExpression="more, also, gone")))

        for expression in (set_first, remove_first, set_first, remove_first):  # the first use is moto's own
            case(expression, 1, 1)
        for also in (982, 983):  # 4 + 4,000 + 4 + also <= 4,990
            case(set_first, 4_000, also)
        for also in (2_982, 2_983):  # "more" replaced by one of its own size: also <= 4,990 - 4 - 4
            case(set_first, 2_000, also, more=2_000)
        for more in (2_982, 2_983):  # at its SET, the old "more" (2,004) still counts: 2,004 + 4 + more
            case(set_first, more, 1, more=2_000)
        for more in (3_000, 4_982, 4_983):  # "gone" (3,004) removed first, then 4 + more + 4 + 1
            case(remove_first, more, 1, gone=3_000)
        case(set_first, 3_000, 1, gone=3_000)  # removed last: too late
        return out
    twin(scenario)


def test_a_tree_s_clauses_are_moto_s_each_time_and_only_whole_trees_are_kept() -> None:
    from moto.dynamodb.parsing.ast_nodes import ExpressionAttributeName, ExpressionAttributeValue, Node
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    from fila.local import fast_updates

    stock = Node.find_clauses
    expression = "SET #a = :a, #b = if_not_exists(#b, :z) + :one REMOVE #c"
    trees = [UpdateExpressionParser.make(expression) for _ in range(2)]  # two objects, one expression
    expected = [[[str(c) for c in stock(t, [kind])] for kind in (ExpressionAttributeName, ExpressionAttributeValue)]
                for t in trees]
    walks: list[Any] = []
    Node.find_clauses = lambda self, kinds: walks.append(self) or stock(self, kinds)  # type: ignore
    kept = fast_updates._remember_clauses()
    try:
        for _ in range(3):
            got = [[[str(c) for c in t.find_clauses([kind])]
                    for kind in (ExpressionAttributeName, ExpressionAttributeValue)] for t in trees]
            assert got == expected
        roots = [w for w in walks if any(w is t for t in trees)]
        assert len(roots) == 4  # each tree walked once per kind of clause, then kept
        assert len(walks) > 4  # its children were walked within those walks, not kept on their own
        assert len(kept) == 4
        assert trees[0].find_clauses([ExpressionAttributeName]) is not trees[0].find_clauses([ExpressionAttributeName])
    finally:
        Node.find_clauses = stock
