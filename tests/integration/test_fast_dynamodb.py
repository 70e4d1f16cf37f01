"""fila.local.fast_dynamodb keeps moto's observable DynamoDB semantics: each scenario runs against moto's
own server and the patched emulator, and every answer (items, returned values, error codes) must be
the same. Scenarios repeat their expressions on purpose: the patches remember expressions, skip checks
an expression has passed before, and write items out without walking them, so a second use is where
they could differ."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from tests.integration.conftest import error

Scenario = Callable[[Any, str], Any]
pytestmark = pytest.mark.xdist_group("stock-moto")


def side_by_side(stock: str, patched: str, scenario: Scenario) -> None:
    answers, table = [], "t-" + uuid.uuid4().hex[:10]
    for url in (stock, patched):
        ddb = boto3.client("dynamodb", endpoint_url=url)
        ddb.create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "g")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{"IndexName": "by-g", "Projection": {"ProjectionType": "ALL"},
                                     "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}]}])
        answers.append(scenario(ddb, table))
    assert answers[1] == answers[0]


@pytest.fixture
def twin(stock_moto: str, aws_endpoint: str) -> Callable[[Scenario], None]:
    return lambda scenario: side_by_side(stock_moto, aws_endpoint, scenario)


def key(n: int) -> dict[str, Any]:
    return {"pk": {"S": f"p{n}"}, "sk": {"S": "s"}}


def answer(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


RICH = {"g": {"S": "x"}, "n": {"N": "1"}, "text": {"S": "héllo"}, "flag": {"BOOL": True}, "nothing": {"NULL": True},
        "tags": {"SS": ["a", "b"]}, "nums": {"NS": ["1", "2.5"]}, "blob": {"B": b"\x00\xff"},
        "blobs": {"BS": [b"\x01", b"\x02"]}, "list": {"L": [{"S": "a"}, {"N": "2"}, {"M": {"b": {"B": b"z"}}}]},
        "map": {"M": {"inner": {"M": {"deep": {"S": "d"}}}, "l": {"L": [{"BOOL": False}]}}}}


def test_items_of_every_type_come_back_the_same(twin: Callable[[Scenario], None]) -> None:
    def scenario(ddb: Any, table: str) -> Any:
        ddb.put_item(TableName=table, Item={**key(1), **RICH})
        plain = {k: v for k, v in RICH.items() if k not in ("blob", "blobs", "list")}
        ddb.put_item(TableName=table, Item={**key(2), **plain})
        return [answer(ddb.get_item(TableName=table, Key=key(n))) for n in (1, 2)] + [
            sorted(map(str, ddb.query(TableName=table, IndexName="by-g", KeyConditionExpression="g = :g",
                                      ExpressionAttributeValues={":g": {"S": "x"}})["Items"])),
            answer(ddb.batch_get_item(RequestItems={table: {"Keys": [key(1), key(2)]}}))["Responses"][table][0]
            is not None]
    twin(scenario)


UPDATES = [
    ("SET #a = if_not_exists(#a, :zero) + :one, #t = :t REMOVE #gone", {"#a": "count", "#t": "text", "#gone": "g"},
     {":zero": {"N": "0"}, ":one": {"N": "1"}, ":t": {"S": "t"}}),
    ("SET #l = list_append(if_not_exists(#l, :empty), :more)", {"#l": "log"},
     {":empty": {"L": []}, ":more": {"L": [{"S": "entry"}]}}),
    ("ADD #n :two, #tags :tag DELETE #nums :one", {"#n": "n", "#tags": "tags", "#nums": "nums"},
     {":two": {"N": "2"}, ":tag": {"SS": ["c"]}, ":one": {"NS": ["1"]}}),
    ("SET #m.#i.#d = :d, #list[0] = :first", {"#m": "map", "#i": "inner", "#d": "deep", "#list": "list"},
     {":d": {"S": "deeper"}, ":first": {"S": "z"}}),
]


@pytest.mark.parametrize("returns", ["NONE", "ALL_OLD", "UPDATED_OLD", "UPDATED_NEW", "ALL_NEW"])
def test_updates_and_what_they_return(twin: Callable[[Scenario], None], returns: str) -> None:
    def scenario(ddb: Any, table: str) -> Any:
        out = []
        for n in (1, 2):
            ddb.put_item(TableName=table, Item={**key(n), **RICH})
            for _ in range(2):  # the second time through, every expression is a remembered one
                for expression, names, values in UPDATES:
                    out.append(answer(ddb.update_item(
                        TableName=table, Key=key(n), UpdateExpression=expression, ExpressionAttributeNames=names,
                        ExpressionAttributeValues=values, ReturnValues=returns)))
            out.append(answer(ddb.get_item(TableName=table, Key=key(n))))
        return out
    twin(scenario)


def test_conditions_hold_and_fail_alike(twin: Callable[[Scenario], None]) -> None:
    def scenario(ddb: Any, table: str) -> Any:
        claim = dict(UpdateExpression="SET #s = :active ADD #tries :one",
                     ConditionExpression="(#s = :waiting) OR (#s = :active AND #until < :now)",
                     ExpressionAttributeNames={"#s": "status", "#tries": "tries", "#until": "until"},
                     ExpressionAttributeValues={":active": {"S": "active"}, ":one": {"N": "1"},
                                                ":waiting": {"S": "waiting"}, ":now": {"N": "5"}},
                     ReturnValues="ALL_NEW")
        ddb.put_item(TableName=table, Item={**key(1), "status": {"S": "waiting"}, "until": {"N": "9"}})
        first = answer(ddb.update_item(TableName=table, Key=key(1), **claim))
        again = error(lambda: ddb.update_item(TableName=table, Key=key(1), **claim))
        try:
            ddb.update_item(TableName=table, Key=key(1), ReturnValuesOnConditionCheckFailure="ALL_OLD", **claim)
            old = None
        except ddb.exceptions.ConditionalCheckFailedException as err:
            old = err.response.get("Item")
        missing = error(lambda: ddb.update_item(TableName=table, Key=key(2), **claim))
        return first, again, old, missing, answer(ddb.get_item(TableName=table, Key=key(2)))
    twin(scenario)


def test_a_remembered_expression_is_still_checked_against_its_names(twin: Callable[[Scenario], None]) -> None:
    """The structural checks are skipped only for an expression, names and key seen to pass before."""
    def scenario(ddb: Any, table: str) -> Any:
        def update(names: dict[str, str], expression: str = "SET #x = :v, #y = :w") -> Any:
            return error(lambda: ddb.update_item(
                TableName=table, Key=key(1), UpdateExpression=expression, ExpressionAttributeNames=names,
                ExpressionAttributeValues={":v": {"S": "v"}, ":w": {"S": "w"}}))
        return [update({"#x": "a", "#y": "b"}), update({"#x": "a", "#y": "b"}),
                update({"#x": "a", "#y": "pk"}),  # a key attribute
                update({"#x": "a", "#y": "a"}),  # two paths that overlap
                update({"#x": "a", "#y": "b"}, "SET #x = :v SET #y = :w"),  # two SET clauses
                update({"#x": "a", "#y": "b"}), update({"#x": "a"}, "SET #x = :v, #z = :w")]
    twin(scenario)


def test_transactions_and_batches(twin: Callable[[Scenario], None]) -> None:
    def scenario(ddb: Any, table: str) -> Any:
        write = [{"Put": {"TableName": table, "Item": {**key(n), "g": {"S": "x"}},
                          "ConditionExpression": "attribute_not_exists(pk)"}} for n in (1, 2)]
        bump = [{"Update": {"TableName": table, "Key": key(n), "UpdateExpression": "ADD #c :one",
                            "ExpressionAttributeNames": {"#c": "c"},
                            "ExpressionAttributeValues": {":one": {"N": "1"}}}} for n in (1, 2)]
        out = [error(lambda: ddb.transact_write_items(TransactItems=write)),
               error(lambda: ddb.transact_write_items(TransactItems=write)),
               error(lambda: ddb.transact_write_items(TransactItems=bump)),
               error(lambda: ddb.transact_write_items(TransactItems=bump))]
        ddb.batch_write_item(RequestItems={table: [{"DeleteRequest": {"Key": key(1)}}]})
        return out + [answer(ddb.get_item(TableName=table, Key=key(n))) for n in (1, 2)]
    twin(scenario)


def test_a_failed_transaction_leaves_every_item_as_it_was(twin: Callable[[Scenario], None]) -> None:
    """The patched emulator backs up only the items a transaction names: a failure late in it rolls
    back the writes before it (a put of a new item, an update, a delete) exactly as moto's whole-table
    copy did."""
    def scenario(ddb: Any, table: str) -> Any:
        for n in (1, 2, 3):
            ddb.put_item(TableName=table, Item={**key(n), "g": {"S": "x"}, "v": {"N": str(n)}})
        failing = [
            {"Put": {"TableName": table, "Item": {**key(9), "g": {"S": "new"}}}},
            {"Update": {"TableName": table, "Key": key(1), "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"N": "100"}}}},
            {"Delete": {"TableName": table, "Key": key(2)}},
            {"ConditionCheck": {"TableName": table, "Key": key(3), "ConditionExpression": "v = :no",
                                "ExpressionAttributeValues": {":no": {"N": "0"}}}},
        ]
        out = [error(lambda: ddb.transact_write_items(TransactItems=failing)),
               error(lambda: ddb.transact_write_items(TransactItems=[failing[1], {**failing[1]}]))]
        items = ddb.scan(TableName=table)["Items"]
        by_g = ddb.query(TableName=table, IndexName="by-g", KeyConditionExpression="g = :g",
                         ExpressionAttributeValues={":g": {"S": "x"}})["Items"]
        return [*out, sorted(items, key=str), sorted(by_g, key=str)]
    twin(scenario)


def test_one_condition_string_is_read_with_each_requests_own_values(twin: Callable[[Scenario], None]) -> None:
    """A condition is parsed once per request, not once per string: the same text with other values (or
    names) must be judged on them."""
    def scenario(ddb: Any, table: str) -> Any:
        ddb.put_item(TableName=table, Item={**key(1), "n": {"N": "5"}, "m": {"N": "1"}})
        def update(name: str, bound: str) -> Any:
            return error(lambda: ddb.update_item(
                TableName=table, Key=key(1), UpdateExpression="SET #b = :b", ConditionExpression="#a > :v",
                ExpressionAttributeNames={"#a": name, "#b": "b"},
                ExpressionAttributeValues={":v": {"N": bound}, ":b": {"S": bound}}))
        # five cases, so that each of the server's 64 threads, taking turns, sees them all
        cases = [("n", "4"), ("n", "6"), ("m", "4"), ("m", "0"), ("n", "5")] * 20
        return [*(update(*case) for case in cases), answer(ddb.get_item(TableName=table, Key=key(1)))]
    twin(scenario)


def test_updates_that_moto_refuses_are_refused_alike(twin: Callable[[Scenario], None]) -> None:
    """Each check of an update's values and paths, every walk of the validator, with the first error."""
    def scenario(ddb: Any, table: str) -> Any:
        ddb.put_item(TableName=table, Item={**key(1), "s": {"S": "text"}, "n": {"N": "1"}})

        def update(expression: str, values: dict[str, Any], names: dict[str, str] | None = None) -> Any:
            return error(lambda: ddb.update_item(
                TableName=table, Key=key(1), UpdateExpression=expression,
                ExpressionAttributeNames=names or {"#s": "s", "#n": "n", "#x": "absent"},
                ExpressionAttributeValues=values))
        one = {":one": {"N": "1"}}
        return [update("SET #n = #n + :one", one), update("SET #n = #x + :one", one),
                update("SET #n = #s + :one", one), update("ADD #s :one", one),
                update("SET #n = list_append(#n, :l)", {":l": {"L": []}}),
                update("SET #n = :missing + :one", one), update("SET #n = :one, #y = :one", one),
                update("SET #n = :e", {":e": {"S": ""}}, {"#n": "sk"}),
                update("SET #n = #x + :one, #s = :one", one),
                answer(ddb.get_item(TableName=table, Key=key(1)))]
    twin(scenario)


def test_items_at_the_size_limit_are_taken_and_refused_alike(twin: Callable[[Scenario], None]) -> None:
    """moto's limit, 405,000 bytes of names and values: here the key's 7 plus ``big`` (3 + its length)."""
    def scenario(ddb: Any, table: str) -> Any:
        def item(n: int, length: int) -> dict[str, Any]:
            return {**key(n), "n": {"N": "1"}, "big": {"S": "x" * length}}  # "n": 2 bytes more

        def put(n: int, length: int) -> Any:
            return error(lambda: ddb.put_item(TableName=table, Item=item(n, length)))

        def transact(n: int, length: int) -> Any:
            return error(lambda: ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": table, "Item": item(n, 10)}},
                {"Put": {"TableName": table, "Item": item(n + 1, length)}}]))
        at_limit = 405_000 - 7 - 2 - 3
        found = [put(1, at_limit), put(2, at_limit + 1), put(3, at_limit - 1), transact(4, at_limit),
                 transact(6, at_limit + 1)]
        return [*found, sorted(i["pk"]["S"] for i in ddb.scan(TableName=table, ProjectionExpression="pk")["Items"])]
    twin(scenario)


def test_every_kind_of_condition_is_judged_on_each_requests_values(twin: Callable[[Scenario], None]) -> None:
    """fila.local.fast_conditions parses a condition once per shape and puts each request's values in its
    copy: every function and operator, values of every type, each shape twice with other values, and the
    errors moto raises for a bad expression, an unknown value or name, and a reserved word."""
    conditions: list[tuple[str, dict[str, Any]]] = [
        ("attribute_exists(#a) AND NOT attribute_not_exists(#b)", {}),
        ("begins_with(#t, :v) OR contains(#tags, :w)", {":v": {"S": "hé"}, ":w": {"S": "b"}}),
        ("begins_with(#t, :v) OR contains(#tags, :w)", {":v": {"S": "x"}, ":w": {"S": "z"}}),
        ("size(#tags) = :n AND #n BETWEEN :lo AND :hi", {":n": {"N": "2"}, ":lo": {"N": "0"}, ":hi": {"N": "3"}}),
        ("size(#tags) = :n AND #n BETWEEN :lo AND :hi", {":n": {"N": "2"}, ":lo": {"N": "2"}, ":hi": {"N": "3"}}),
        ("#n IN (:a, :b, :c)", {":a": {"N": "7"}, ":b": {"N": "1"}, ":c": {"N": "9"}}),
        ("#n IN (:a, :b, :c)", {":a": {"N": "7"}, ":b": {"N": "8"}, ":c": {"N": "9"}}),
        ("attribute_type(#t, :type) AND #flag = :yes", {":type": {"S": "S"}, ":yes": {"BOOL": True}}),
        ("attribute_type(#t, :type) AND #flag = :yes", {":type": {"S": "N"}, ":yes": {"BOOL": True}}),
        ("#l = :l AND #m <> :m", {":l": {"L": [{"S": "a"}, {"N": "2"}]}, ":m": {"M": {"k": {"S": "v"}}}}),
        ("#l = :l AND #m <> :m", {":l": {"L": [{"S": "a"}]}, ":m": {"M": {"k": {"S": "v"}}}}),
        ("#tags = :ss OR #n >= :n", {":ss": {"SS": ["a", "b"]}, ":n": {"N": "5"}}),
        ("#tags = :ss OR #n >= :n", {":ss": {"SS": ["b", "a"]}, ":n": {"N": "1"}}),
        ("#n > :missing", {":v": {"N": "1"}}),  # an unknown value
        ("#nope = :v", {":v": {"N": "1"}}),  # an unknown name
        ("#n = :v AND", {":v": {"N": "1"}}),  # not an expression
        ("size = :v", {":v": {"N": "1"}}),  # a reserved word
    ]
    names = {"#a": "n", "#b": "text", "#t": "text", "#tags": "tags", "#n": "n", "#flag": "flag", "#l": "l",
             "#m": "m"}

    def scenario(ddb: Any, table: str) -> Any:
        ddb.put_item(TableName=table, Item={**key(1), "n": {"N": "1"}, "text": {"S": "héllo"},
                                            "tags": {"SS": ["a", "b"]}, "flag": {"BOOL": True},
                                            "l": {"L": [{"S": "a"}, {"N": "2"}]}, "m": {"M": {"k": {"S": "w"}}}})
        def update(condition: str, values: dict[str, Any]) -> Any:
            used = {k: v for k, v in names.items() if k in condition}
            return ddb.update_item(
                TableName=table, Key=key(1), UpdateExpression="SET #seen = :seen", ConditionExpression=condition,
                ExpressionAttributeNames={**used, "#seen": "seen"},
                ExpressionAttributeValues={**values, ":seen": {"S": condition}})

        rounds = range(2)  # the second round meets every shape remembered
        out = [error(functools.partial(update, c, v)) for _ in rounds for c, v in conditions]
        return out, answer(ddb.get_item(TableName=table, Key=key(1)))
    twin(scenario)


def test_a_transaction_sent_again_with_its_token_is_done_once(aws_endpoint: str) -> None:
    """Not stock moto's behaviour, AWS's: botocore fills ClientRequestToken and sends it again when an
    answer is lost; a repeat within ten minutes succeeds and changes nothing, the same token with other
    items is refused. Stock moto applied the repeat, so a conditional one failed on its own first write."""
    ddb, table = boto3.client("dynamodb", endpoint_url=aws_endpoint), "t-" + uuid.uuid4().hex[:10]
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])

    def counted(pk: str) -> dict[str, Any]:
        return {"Update": {"TableName": table, "Key": {"pk": {"S": pk}}, "UpdateExpression": "ADD n :one",
                           "ConditionExpression": "attribute_not_exists(n)",
                           "ExpressionAttributeValues": {":one": {"N": "1"}}}}

    token = uuid.uuid4().hex
    ddb.transact_write_items(TransactItems=[counted("a"), counted("b")], ClientRequestToken=token)
    ddb.transact_write_items(TransactItems=[counted("a"), counted("b")], ClientRequestToken=token)
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"]["n"] == {"N": "1"}
    assert error(lambda: ddb.transact_write_items(TransactItems=[counted("c")], ClientRequestToken=token)) \
        == "IdempotentParameterMismatchException"
    assert error(lambda: ddb.transact_write_items(TransactItems=[counted("a"), counted("b")],
                                                  ClientRequestToken=uuid.uuid4().hex)) \
        == "TransactionCanceledException"  # a new token: a new transaction, refused by its conditions
