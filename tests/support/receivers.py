"""Real HTTP receivers for the merchant webhooks' tests: local servers that record what
they were sent and answer as a test scripts them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: str
    path: str


@dataclass
class Receiver:
    """Answers each request with the next of `answers` (the last one repeats), after
    `delay` seconds; a 3xx answer carries `location`."""

    answers: list[int] = field(default_factory=lambda: [200])
    delay: float = 0.0
    location: str | None = None
    url: str = ""
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set while a request is being held (for the crash test); released by `release`.
    hold: threading.Event | None = None
    holding: threading.Event = field(default_factory=threading.Event)

    def answer(self) -> int:
        with self.lock:
            index = min(len(self.received) - 1, len(self.answers) - 1)
            return self.answers[index]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The first `count` requests, waiting for them with a deadline."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        with self.lock:
            raise AssertionError(f"{len(self.received)} of {count} requests came: {self.received}")


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length).decode()
            headers = {k.lower(): v for k, v in self.headers.items()}
            with receiver.lock:
                receiver.received.append(Received(headers, body, self.path))
            if receiver.hold is not None:
                receiver.holding.set()
                receiver.hold.wait(60)
            if receiver.delay:
                time.sleep(receiver.delay)
            status = receiver.answer()
            self.send_response(status)
            if 300 <= status < 400 and receiver.location:
                self.send_header("location", receiver.location)
            reply = b"ok" if status < 300 else b"no" * 1000
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextmanager
def receiving(**options: object) -> Iterator[Receiver]:
    """A receiver on a free local port until the block ends."""
    receiver = Receiver(**options)  # type: ignore[arg-type]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        if receiver.hold is not None:
            receiver.hold.set()
        server.shutdown()
        server.server_close()


Resolve = Callable[[str, int], object]
