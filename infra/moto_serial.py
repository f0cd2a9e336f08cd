"""moto server (DynamoDB) that runs one request at a time.

`moto_server` is threaded, and moto's DynamoDB is not thread-safe: TransactWriteItems deep-copies
the table while other threads write to it (HTTP 500, "dictionary changed size during iteration"),
and a conditional write is not atomic with respect to another thread's. Here connections are still
served by threads (keep-alive clients do not block each other), but the application runs under one
lock, which gives each request the atomicity DynamoDB guarantees and the job store relies on.

Usage: python moto_serial.py HOST PORT  (with the tools venv's python, where moto is installed)
"""
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


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = Serialized(DomainDispatcherApplication(create_backend_app))
    run_simple(host, port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
