"""An aiosmtpd server on 127.0.0.1 that accepts and counts every message, in its own
process so that it does not share a core's GIL with the sender it measures.

    python bench/smtp_sink.py PORT
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

from aiosmtpd.controller import Controller


class Counter:
    """Accepts everything; keeps only a count (parsing would make the server the bottleneck)."""

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages += 1
        self.bytes += len(envelope.original_content or b"")
        return "250 OK"


def main() -> int:
    port = int(sys.argv[1])
    counter = Counter()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"listening on 127.0.0.1:{port}", flush=True)
    stop.wait()
    controller.stop()
    print(f"received {counter.messages} messages, {counter.bytes} bytes", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
