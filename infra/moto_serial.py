"""moto server (DynamoDB) that runs one request at a time.

`moto_server` is threaded, and moto's DynamoDB is not thread-safe: TransactWriteItems deep-copies
the table while other threads write to it (HTTP 500, "dictionary changed size during iteration"),
and a conditional write is not atomic with respect to another thread's. Here connections are still
served by threads (keep-alive clients do not block each other), but the application runs under one
lock, which gives each request the atomicity DynamoDB guarantees and the job store relies on.

It also replaces moto's TransactWriteItems, which deep-copies every table it touches before each
call (to roll back on failure): with the jobs table holding thousands of items that made each
transaction O(table size), and every job transition is a transaction. This version checks every
condition first and writes nothing if one fails (as DynamoDB does), then applies the writes with a
backup of just the items it touches.

Usage: python moto_serial.py HOST PORT  (with the tools venv's python, where moto is installed)
"""
import copy
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


class Serialized:
    """WSGI middleware: one request inside the application at a time, response body included."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            return list(self.app(environ, start_response))


def transact_write_items(self, transact_items):
    """DynamoDBBackend.transact_write_items, same results, without copying whole tables."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    seen, plan, errors = set(), [], []
    for item in transact_items:
        if len(item) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        original_item = None
        try:
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            if op_type == "Put":
                table = self.get_table(table_name)
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            ident = (str(table_name), str(dict(sorted(key.items()))))
            if ident in seen:
                raise MultipleTransactionsException()
            seen.add(ident)
            current = self.get_item(table_name, key)
            condition = op.get("ConditionExpression")
            if condition is not None:
                check = get_filter_expression(
                    condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                )
                if not check.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            before = copy.deepcopy(current.to_json()["Attributes"]) if current else None
            plan.append((op_type, op, table_name, key, before))
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # noqa: BLE001 - reported per item, as moto does
            errors.append((type(e).__name__, str(e), original_item))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)

    applied = []
    for i, (op_type, op, table_name, key, before) in enumerate(plan):
        try:
            applied.append((table_name, key, before))
            if op_type == "Put":
                self.put_item(table_name, op["Item"])
            elif op_type == "Delete":
                self.delete_item(table_name, key)
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=op.get("ExpressionAttributeNames"),
                    expression_attribute_values=op.get("ExpressionAttributeValues"),
                )
        except Exception as e:  # noqa: BLE001 - undo this transaction's writes, then report
            for undo_table, undo_key, undo_before in reversed(applied):
                if undo_before is None:
                    self.delete_item(undo_table, undo_key)
                else:
                    self.put_item(undo_table, undo_before)
            if isinstance(e, MockValidationException):
                raise
            report = [(None, None, None)] * len(plan)
            report[i] = (type(e).__name__, str(e), None)
            raise TransactionCanceledException(report) from e


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from moto.dynamodb.models import DynamoDBBackend

    DynamoDBBackend.transact_write_items = transact_write_items
    app = Serialized(DomainDispatcherApplication(create_backend_app))
    run_simple(host, port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
