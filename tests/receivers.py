"""A tenant's own HTTP service in a thread, for what the platform sends out (log drains,
events): records each POST with its headers, or fails with `fail_status` while told to."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, fail_status: int = 503):
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail = 0  # how many of the next requests fail
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                if receiver.fail:
                    receiver.fail -= 1
                    self.send_response(fail_status)
                    answer = b"database is down"
                else:
                    receiver.received.append((dict(self.headers), body))
                    self.send_response(200)
                    answer = b"thanks"
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ingest"

    @property
    def bodies(self) -> list[bytes]:
        return [body for _headers, body in self.received]

    @property
    def signatures(self) -> list[str]:
        return [headers["x-signature"] for headers, _body in self.received]

    def lines(self) -> list[dict]:
        """NDJSON bodies' rows, in order."""
        return [json.loads(row) for body in self.bodies for row in body.decode().splitlines()]

    def __enter__(self) -> "Receiver":
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
