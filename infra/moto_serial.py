"""moto server (DynamoDB) serving one request at a time.

`moto_server` is threaded, and moto's DynamoDB is not thread-safe: TransactWriteItems deep-copies
the table while other threads write to it (HTTP 500, "dictionary changed size during iteration"),
and a conditional write is not atomic with respect to another thread's. Serving requests one by one
gives each request the atomicity DynamoDB guarantees, which the job store's conditional writes rely on.

Usage: python moto_serial.py HOST PORT  (with the tools venv's python, where moto is installed)
"""
import signal
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
