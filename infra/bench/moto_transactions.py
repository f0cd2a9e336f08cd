"""TransactWriteItems vs PutItem latency on moto servers, on a table of 3,000 2 KB items.

Compares moto as shipped with infra/moto_serial.py's TransactWriteItems (which backs up only the
items a transaction touches). Usage, with the tools venv's python (boto3 comes with moto):
  PY=~/.cache/serverless-jobs/tools/py/bin/python
  $PY infra/moto_serial.py 127.0.0.1 4668 &          # patched
  $PY -m moto.server -p 4669 &                         # as shipped
  $PY infra/bench/moto_transactions.py 4669 4668
"""
import sys, time, boto3, uuid
def run(port):
    c = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                     aws_access_key_id="test", aws_secret_access_key="test")
    t = "txbench-" + uuid.uuid4().hex[:8]
    c.create_table(TableName=t, AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                   KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    blob = "x" * 2000
    for i in range(0, 3000, 25):
        c.batch_write_item(RequestItems={t: [{"PutRequest": {"Item": {"pk": {"S": f"p{j}"}, "d": {"S": blob}}}} for j in range(i, i + 25)]})
    n = 100
    s = time.perf_counter()
    for i in range(n):
        c.transact_write_items(TransactItems=[
            {"Put": {"TableName": t, "Item": {"pk": {"S": f"new{i}"}, "d": {"S": "y"}}, "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Update": {"TableName": t, "Key": {"pk": {"S": "counter"}}, "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}}])
    tx = (time.perf_counter() - s) / n
    s = time.perf_counter()
    for i in range(n):
        c.put_item(TableName=t, Item={"pk": {"S": f"put{i}"}, "d": {"S": "y"}})
    put = (time.perf_counter() - s) / n
    c.delete_table(TableName=t)
    return tx, put
for port in sys.argv[1:]:
    name = f"moto on :{port}"
    tx, put = run(int(port))
    print(f"{name}: TransactWriteItems {tx*1000:.1f} ms, PutItem {put*1000:.1f} ms, ratio {tx/put:.1f}x  (table of 3000 items, 2 KB each)")
