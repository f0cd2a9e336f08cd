#!/usr/bin/env python3
"""Deletes the DynamoDB tables of the integration tests' stacks (`t<10 hex>-...`, made by
local_bridge::testing::TestStack) from the local DynamoDB emulator. DynamoDB Local keeps its data
across restarts ($DYNAMODB_DATA), so without this every `infra/test` would leave ~100 tables behind;
infra/test runs it before and after the emulator tests. The stack's own tables (jobs-local-...) stay.

Usage: drop-test-tables.py ENDPOINT     (e.g. $AWS_ENDPOINT_URL_DYNAMODB)
DynamoDB Local checks that a request is signed but not the signature, so a stub one is enough here.
"""
import concurrent.futures
import json
import re
import sys
import time
import urllib.request

TEST_TABLE = re.compile(r"^t[0-9a-f]{10}-")


def call(endpoint, action, body):
    day = time.strftime("%Y%m%d", time.gmtime())
    req = urllib.request.Request(endpoint, data=json.dumps(body).encode(), method="POST", headers={
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": f"DynamoDB_20120810.{action}",
        "authorization": f"AWS4-HMAC-SHA256 Credential=test/{day}/us-east-1/dynamodb/aws4_request, "
                         "SignedHeaders=host, Signature=0",
    })
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def main():
    endpoint = sys.argv[1]
    names, start = [], None
    while True:
        page = call(endpoint, "ListTables", {"ExclusiveStartTableName": start} if start else {})
        names += page.get("TableNames", [])
        start = page.get("LastEvaluatedTableName")
        if not start:
            break
    doomed = [n for n in names if TEST_TABLE.match(n)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: call(endpoint, "DeleteTable", {"TableName": n}), doomed))
    print(f"dropped {len(doomed)} test tables of {len(names)}", file=sys.stderr)


if __name__ == "__main__":
    main()
