"""Time a window's stalls from outside: send it ``_NET_WM_PING`` every INTERVAL
seconds for SECONDS and time each reply (a Qt window answers on its GUI thread, so
a reply that is late is a stall the user would feel).

    DISPLAY=:99 python scripts/xvfb-ping.py WINDOW_ID SECONDS OUT.json [INTERVAL]

Needs python-xlib (``pip install --target DIR python-xlib``, then ``PYTHONPATH=DIR``).
SIGTERM or SIGINT ends it early, still writing OUT.json: the latencies in ms, how
many pings were never answered, and the max, the percentiles and the count over
100 ms, also printed as one line.
"""

from __future__ import annotations

import json
import select
import signal
import sys
import time
from pathlib import Path

from Xlib import X, display  # type: ignore[import-not-found]
from Xlib.protocol import event  # type: ignore[import-not-found]

FIRST_SERIAL = 7_000_000  # far from the timestamps the window manager's own pings carry


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(latencies: list[float], lost: int) -> dict[str, object]:
    return {
        "pings": len(latencies) + lost,
        "answered": len(latencies),
        "lost": lost,
        "max_ms": round(max(latencies, default=0.0), 1),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p90_ms": round(percentile(latencies, 90), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "over_100_ms": sum(1 for value in latencies if value > 100),
    }


def main(window_id: int, seconds: float, out: Path, interval: float = 0.075) -> int:
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    d = display.Display()
    root = d.screen().root
    # the replies go to the root (Qt sends them with StructureNotify | SubstructureRedirect)
    root.change_attributes(event_mask=X.StructureNotifyMask | X.SubstructureNotifyMask)
    window = d.create_resource_object("window", window_id)
    protocols, ping = d.intern_atom("WM_PROTOCOLS"), d.intern_atom("_NET_WM_PING")
    sent: dict[int, float] = {}
    latencies: list[float] = []
    serial = FIRST_SERIAL
    end = time.monotonic() + seconds
    next_send = time.monotonic()

    def read_replies() -> None:
        while d.pending_events():
            ev = d.next_event()
            if ev.type == X.ClientMessage and ev.client_type == protocols:
                _format, data = ev.data
                if data[0] == ping and data[1] in sent:
                    latencies.append((time.monotonic() - sent.pop(data[1])) * 1000)

    while not stop["now"] and time.monotonic() < end:
        if time.monotonic() >= next_send:
            message = event.ClientMessage(
                window=window, client_type=protocols, data=(32, [ping, serial, window_id, 0, 0])
            )
            window.send_event(message, event_mask=X.NoEventMask)
            d.flush()
            sent[serial] = time.monotonic()
            serial += 1
            next_send += interval
        select.select([d], [], [], max(0.0, next_send - time.monotonic()))
        read_replies()
    grace = time.monotonic() + 2.0
    while sent and time.monotonic() < grace:
        select.select([d], [], [], 0.05)
        read_replies()
    result = summary(latencies, len(sent))
    out.write_text(json.dumps({**result, "latencies_ms": [round(v, 1) for v in latencies]}))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(int(args[0], 0), float(args[1]), Path(args[2]), *(float(a) for a in args[3:4])))
