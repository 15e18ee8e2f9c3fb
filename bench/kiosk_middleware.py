"""The middleware stack's CPU on a kiosk API request that reads no database.

    DATABASE_URL=postgres://user@host:5432/commissary_bench python bench/kiosk_middleware.py

Calls the project's WSGI application in process with ``GET /api/kiosk/v1/nothing-here`` (the
API's 404 envelope: URL resolution, the middleware and the error handler, no statement) and
prints the best of five averages of process CPU time a request. Run it with ``MIDDLEWARE`` as
it is and with the browser middleware listed by its own names, to see what passing it by saves.
"""

import argparse
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ENVIRON = {
    "REQUEST_METHOD": "GET",
    "PATH_INFO": "/api/kiosk/v1/nothing-here",
    "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8000",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "HTTP_HOST": "127.0.0.1",
    "wsgi.url_scheme": "http",
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests a measurement")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commissary.settings")
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    application = WSGIHandler()

    def request():
        answer = application({**ENVIRON, "wsgi.input": io.BytesIO(b"")}, lambda *_: None)
        b"".join(answer)
        answer.close()

    for _ in range(300):
        request()
    averages = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(args.requests):
            request()
        averages.append((time.process_time() - start) / args.requests)
    print(f"{min(averages) * 1e6:.0f} us CPU a request (best of 5 x {args.requests})")


if __name__ == "__main__":
    main()
