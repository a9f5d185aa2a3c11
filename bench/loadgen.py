"""A small closed-loop HTTP load generator, run as its own process so the server under test does not
share its interpreter: N threads, each with a keep-alive connection, POST the same body until the total
request count is reached. Prints one JSON object: per-request latencies and the wall time.

Each thread opens a new connection every `--reconnect-every` requests, as clients behind load balancers
do: with connections held for a whole run, which server process happens to accept which connection
decides the figure (seen here: 8 connections all on one of two gunicorn workers in some runs, split in
others), and that is luck, not the server. Both servers under comparison get the same treatment.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True, help="file with the request body")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5, help="requests per thread before timing")
    parser.add_argument("--reconnect-every", type=int, default=10, help="requests per connection")
    args = parser.parse_args()

    body = open(args.body, "rb").read()
    target = urlsplit(args.url)
    path = target.path or "/"
    latencies: list[float] = []
    failures: list[int] = []
    lock = threading.Lock()
    remaining = [args.requests]
    start_gate = threading.Barrier(args.concurrency + 1)

    def worker() -> None:
        state = {"connection": http.client.HTTPConnection(target.hostname, target.port, timeout=120), "used": 0}
        headers = {"Content-Type": "application/json"}

        def one() -> tuple[float, int]:
            if state["used"] >= args.reconnect_every:
                state["connection"].close()
                state["connection"] = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
                state["used"] = 0
            state["used"] += 1
            began = time.perf_counter()  # a reconnect's handshake is part of the request it serves
            state["connection"].request("POST", path, body=body, headers=headers)
            response = state["connection"].getresponse()
            response.read()
            return time.perf_counter() - began, response.status

        for _ in range(args.warmup):
            one()
        start_gate.wait()
        while True:
            with lock:
                if remaining[0] <= 0:
                    break
                remaining[0] -= 1
            elapsed, status = one()
            with lock:
                latencies.append(elapsed)
                if status != 200:
                    failures.append(status)
        state["connection"].close()

    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    json.dump({"wall_s": wall, "latencies_s": latencies, "failures": failures}, sys.stdout)


if __name__ == "__main__":
    main()
