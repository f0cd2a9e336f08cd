#!/usr/bin/env python3
"""Fault-injecting HTTP proxy in front of the local emulators (stdlib only).

The functions' AWS_ENDPOINT_URL_S3/_SQS/_DYNAMODB point here when infra/up runs with FAULT_PROXY=1;
the bridge, the tests and the bench keep the direct endpoints. Each request is routed by the service
named in its SigV4 credential scope (header or presigned query): dynamodb -> DynamoDB Local (or
moto), s3/sqs -> LocalStack. With probability RATE a request gets one fault, drawn uniformly from
its service's menu:

  all services   latency      sleep 50-1500 ms, then forward normally
                 reset_before close the client's connection with a RST before forwarding
                 reset_after  forward, read the emulator's answer, then RST the client: the request
                              took effect but the caller does not know (finds doubled effects)
  s3             s3_500       500 InternalError (XML)
                 s3_slowdown  503 SlowDown (XML)
  dynamodb       ddb_throttling / ddb_provisioned
                              400 {"__type": "...#ThrottlingException" / ProvisionedThroughputExceededException}
                 ddb_500      500 InternalServerError
  sqs            sqs_throttling  400 ThrottlingException (x-amzn-query-error: RequestThrottled;Sender)
                 sqs_503      503 ServiceUnavailable

The n-th request (in arrival order) gets the n-th draw of random.Random(seed): the fault sequence
is deterministic for a seed, which request it lands on depends on timing.

Control (answered by the proxy itself; no bucket name starts with "_"):
  GET  /__faults                          config and counts (JSON)
  POST /__faults?rate=0.1&seed=7&reset=1  change rate/seed (re-seeds), reset=1 zeroes the counts
Every fault is logged (one line), counts every 10 s when they changed, and on SIGTERM.

Usage: fault-proxy.py --listen PORT --localstack PORT --dynamodb PORT [--rate R] [--seed S] [--kinds a,b]
"""
import argparse
import asyncio
import collections
import json
import random
import re
import signal
import socket
import struct
import sys
import time
import urllib.parse

MENUS = {
    "s3": ["latency", "reset_before", "reset_after", "s3_500", "s3_slowdown"],
    "dynamodb": ["latency", "reset_before", "reset_after", "ddb_throttling", "ddb_provisioned", "ddb_500"],
    "sqs": ["latency", "reset_before", "reset_after", "sqs_throttling", "sqs_503"],
}
SCOPE = re.compile(r"/(s3|sqs|dynamodb)/aws4_request")
ITEM_ID = re.compile(rb'"(?:id|job_id)"\s*:\s*\{\s*"S"\s*:\s*"([^"]{1,80})"')
MAX_HEAD = 64 * 1024


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


class Proxy:
    def __init__(self, args):
        self.upstream = {"s3": args.localstack, "sqs": args.localstack, "dynamodb": args.dynamodb}
        self.rate = args.rate
        self.seed = args.seed
        self.kinds = set(args.kinds.split(",")) if args.kinds else None
        self.rng = random.Random(self.seed)
        self.n = 0
        self.counts = collections.Counter()
        self.logged = None

    # ---- decisions -------------------------------------------------------------------------
    def decide(self, service):
        self.n += 1
        roll, pick = self.rng.random(), self.rng.random()  # always two draws: sequence fixed by seed
        if roll >= self.rate:
            return None
        menu = [k for k in MENUS[service] if self.kinds is None or k in self.kinds]
        return menu[int(pick * len(menu))] if menu else None

    def stats(self):
        faults = {k: v for k, v in sorted(self.counts.items()) if not k.startswith("requests")}
        return {"rate": self.rate, "seed": self.seed, "kinds": sorted(self.kinds) if self.kinds else "all",
                "requests": self.counts["requests"], "faults": sum(faults.values()),
                "by_service": {s: self.counts[f"requests:{s}"] for s in MENUS}, "injected": faults}

    def summary(self):
        s = self.stats()
        return f"requests={s['requests']} faults={s['faults']} rate={s['rate']} seed={s['seed']} " + " ".join(
            f"{k}={v}" for k, v in s["injected"].items())

    async def report_loop(self):
        while True:
            await asyncio.sleep(10)
            line = self.summary()
            if line != self.logged:
                log("counts " + line)
                self.logged = line

    # ---- connection handling ---------------------------------------------------------------
    async def handle(self, reader, writer):
        try:
            while True:
                req = await read_request(reader, writer)
                if req is None:
                    break
                keep = await self.serve(req, writer)
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            if not isinstance(e, (asyncio.IncompleteReadError, ConnectionResetError)):
                log(f"client error: {e!r}")
        finally:
            if not writer.is_closing():
                writer.close()

    async def serve(self, req, writer):
        method, target, headers, raw_head, body = req
        if target.startswith("/__faults"):
            return await self.control(method, target, writer)
        service = classify(target, headers)
        self.counts["requests"] += 1
        self.counts[f"requests:{service}"] += 1
        fault = self.decide(service)
        op = operation(service, method, target, headers)
        m = ITEM_ID.search(body[:4096]) if service == "dynamodb" else None
        if m:  # which item: lets a fault be matched with the job it hit
            op += f" {m.group(1).decode('utf-8', 'replace')}"
        if fault:
            self.counts[f"{service}:{fault}"] += 1
            log(f"#{self.n} {service} {op}: {fault}")
        if fault == "reset_before":
            reset(writer)
            return False
        if fault == "latency":
            await asyncio.sleep(0.05 + self.rng.random() * 1.45)
        canned = canned_response(fault, headers)
        if canned:
            writer.write(canned)
            await writer.drain()
            return keep_alive(headers)
        try:
            status, response = await forward(self.upstream[service], method, raw_head, body)
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            self.counts["upstream_errors"] += 1
            log(f"#{self.n} {service} {op}: upstream error {e!r}")
            writer.write(plain(502, "Bad Gateway", f"fault proxy: upstream error {e!r}\n"))
            await writer.drain()
            return False
        if fault == "reset_after":
            log(f"#{self.n} {service} {op}: answered {status} upstream, reset before the client saw it")
            reset(writer)
            return False
        writer.write(response)
        await writer.drain()
        return keep_alive(headers)

    async def control(self, method, target, writer):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
        if method == "POST":
            if "rate" in q:
                self.rate = float(q["rate"][0])
            if "seed" in q:
                self.seed = int(q["seed"][0])
            if "kinds" in q:
                self.kinds = set(q["kinds"][0].split(",")) if q["kinds"][0] not in ("", "all") else None
            self.rng = random.Random(self.seed)
            if q.get("reset", ["0"])[0] == "1":
                self.counts.clear()
                self.n = 0
            log(f"control: rate={self.rate} seed={self.seed} kinds={self.kinds or 'all'} reset={q.get('reset', ['0'])[0]}")
        body = json.dumps(self.stats()).encode()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        return True


# ---- HTTP/1.1 framing ------------------------------------------------------------------------
async def read_head(reader):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise
    if len(head) > MAX_HEAD:
        raise ValueError("head too large")
    lines = head[:-4].split(b"\r\n")
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers.append((k.strip().decode("latin-1").lower(), v.strip().decode("latin-1")))
    return lines[0].decode("latin-1"), headers


def header(headers, name, default=None):
    for k, v in headers:
        if k == name:
            return v
    return default


async def read_body(reader, headers, eof_ok=False):
    """Returns (raw bytes as framed on the wire, chunked?)."""
    if "chunked" in header(headers, "transfer-encoding", "").lower():
        out = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            out += size_line
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    t = await reader.readuntil(b"\r\n")
                    out += t
                    if t == b"\r\n":
                        return bytes(out), True
            out += await reader.readexactly(size + 2)
    length = header(headers, "content-length")
    if length is not None:
        return await reader.readexactly(int(length)), False
    if eof_ok:
        return await reader.read(), False
    return b"", False


async def read_request(reader, writer):
    got = await read_head(reader)
    if got is None:
        return None
    line, headers = got
    method, target, _ = line.split(" ", 2)
    if header(headers, "expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
        headers = [(k, v) for k, v in headers if k != "expect"]
    body, _ = await read_body(reader, headers)
    drop = {"connection", "keep-alive", "proxy-connection"}
    raw = [line] + [f"{k}: {v}" for k, v in headers if k not in drop] + ["connection: close", "", ""]
    return method, target, headers, "\r\n".join(raw).encode("latin-1"), body


async def forward(port, method, raw_head, body):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw_head + body)
        await writer.drain()
        while True:
            got = await read_head(reader)
            if got is None:
                raise ConnectionError("upstream closed without an answer")
            line, headers = got
            status = int(line.split(" ", 2)[1])
            if status >= 200 or status == 101:
                break  # skip interim 1xx answers
        if method == "HEAD" or status in (204, 304):
            body, chunked = b"", False
        else:
            body, chunked = await read_body(reader, headers, eof_ok=True)
        drop = {"connection", "keep-alive"}
        out = ["HTTP/1.1 " + line.split(" ", 1)[1]] + [f"{k}: {v}" for k, v in headers if k not in drop]
        if not chunked and header(headers, "content-length") is None and method != "HEAD" and status not in (204, 304):
            out.append(f"content-length: {len(body)}")
        return status, ("\r\n".join(out + ["", ""])).encode("latin-1") + body
    finally:
        writer.close()


def keep_alive(headers):
    return header(headers, "connection", "").lower() != "close"


def reset(writer):
    sock = writer.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


# ---- services and canned faults --------------------------------------------------------------
def classify(target, headers):
    m = SCOPE.search(header(headers, "authorization", ""))
    if not m:
        m = SCOPE.search(urllib.parse.unquote(target))
    if m:
        return m.group(1)
    amz = header(headers, "x-amz-target", "")
    if amz.startswith("DynamoDB"):
        return "dynamodb"
    if amz.startswith("AmazonSQS"):
        return "sqs"
    return "s3"


def operation(service, method, target, headers):
    amz = header(headers, "x-amz-target")
    if amz:
        return amz.rsplit(".", 1)[-1]
    return f"{method} {urllib.parse.unquote(target.split('?', 1)[0])[:80]}"


def response(status, reason, ctype, body, extra=()):
    body = body.encode()
    lines = [f"HTTP/1.1 {status} {reason}", f"content-type: {ctype}", f"content-length: {len(body)}",
             "x-amzn-requestid: fault-proxy", "x-amz-request-id: fault-proxy", *extra, "", ""]
    return "\r\n".join(lines).encode() + body


def plain(status, reason, text):
    return response(status, reason, "text/plain", text, ["connection: close"])


def s3_error(status, reason, code, message):
    return response(status, reason, "application/xml",
                    f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                    "<RequestId>fault-proxy</RequestId><HostId>fault-proxy</HostId></Error>")


def ddb_error(status, reason, code, message):
    return response(status, reason, "application/x-amz-json-1.0",
                    json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}))


def sqs_error(status, reason, code, query_code, kind, message, headers):
    if header(headers, "x-amz-target"):  # JSON protocol (the Rust SDK)
        return response(status, reason, "application/x-amz-json-1.0",
                        json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message}),
                        [f"x-amzn-query-error: {query_code};{kind}"])
    return response(status, reason, "text/xml",  # query protocol
                    f"<ErrorResponse><Error><Type>{kind}</Type><Code>{query_code}</Code><Message>{message}</Message>"
                    "</Error><RequestId>fault-proxy</RequestId></ErrorResponse>")


def canned_response(fault, headers):
    if fault == "s3_500":
        return s3_error(500, "Internal Server Error", "InternalError", "We encountered an internal error. Please try again.")
    if fault == "s3_slowdown":
        return s3_error(503, "Slow Down", "SlowDown", "Please reduce your request rate.")
    if fault == "ddb_throttling":
        return ddb_error(400, "Bad Request", "ThrottlingException", "Rate of requests exceeds the allowed throughput.")
    if fault == "ddb_provisioned":
        return ddb_error(400, "Bad Request", "ProvisionedThroughputExceededException",
                         "The level of configured provisioned throughput for the table was exceeded.")
    if fault == "ddb_500":
        return ddb_error(500, "Internal Server Error", "InternalServerError", "Internal server error")
    if fault == "sqs_throttling":
        return sqs_error(400, "Bad Request", "ThrottlingException", "RequestThrottled", "Sender",
                         "Request is throttled.", headers)
    if fault == "sqs_503":
        return sqs_error(503, "Service Unavailable", "ServiceUnavailable", "ServiceUnavailable", "Receiver",
                         "The request has failed due to a temporary failure of the server.", headers)
    return None


async def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--localstack", type=int, required=True)
    p.add_argument("--dynamodb", "--moto", dest="dynamodb", type=int, required=True)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--kinds", default="", help="comma list restricting the menus (default: all)")
    args = p.parse_args()
    proxy = Proxy(args)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", args.listen, limit=MAX_HEAD * 2)
    log(f"fault proxy on 127.0.0.1:{args.listen} -> s3/sqs :{args.localstack}, dynamodb :{args.dynamodb}; "
        f"rate={args.rate} seed={args.seed} kinds={args.kinds or 'all'}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reporter = asyncio.create_task(proxy.report_loop())
    async with server:
        await stop.wait()
    reporter.cancel()
    log("stopping; counts " + proxy.summary())


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
