#!/usr/bin/env python3
"""Init time of a Lambda bootstrap binary: process start -> its first `GET .../invocation/next`.

A stand-in Runtime API on 127.0.0.1 records when the function asks for its first event (the
moment Lambda's INIT phase ends). Usage: init_time.py BINARY [RUNS]. Prints the median and best, ms.
"""
import http.server
import os
import statistics
import subprocess
import sys
import threading
import time

first_next = threading.Event()


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if "/runtime/invocation/next" in self.path:
            first_next.set()
            time.sleep(5)  # hold the long poll; the process is killed meanwhile
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    binary, runs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_port}",
        "AWS_LAMBDA_FUNCTION_NAME": os.path.basename(binary),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "AWS_LAMBDA_LOG_GROUP_NAME": "bench",
        "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "JOBS_TABLE": "jobs", "HIGH_QUEUE_URL": "http://127.0.0.1:1/q/high", "NORMAL_QUEUE_URL": "http://127.0.0.1:1/q/normal",
        "UPLOADS_BUCKET": "uploads", "LOG_ENTRIES_TABLE": "entries",
        "INGEST_QUEUE_URL": "http://127.0.0.1:1/q/ingest", "RUST_LOG": "warn",
    })
    samples = []
    for _ in range(runs):
        first_next.clear()
        t0 = time.perf_counter()
        p = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not first_next.wait(10):
            p.kill()
            sys.exit(f"{binary} never asked for an event")
        samples.append((time.perf_counter() - t0) * 1000)
        p.kill()
        p.wait()
    name = os.path.basename(os.path.dirname(binary)) if os.path.basename(binary) == "bootstrap" else os.path.basename(binary)
    print(f"{name}: init median {statistics.median(samples):.1f} ms, best {min(samples):.1f} ms ({runs} runs)")
    server.shutdown()


if __name__ == "__main__":
    main()
