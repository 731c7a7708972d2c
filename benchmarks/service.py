"""Load on the HTTP service: POST /screen with the example profiles from concurrent clients.

    python benchmarks/service.py [--requests 2000] [--concurrency 50] [--engine explain]

Starts ``screening serve`` on a free loopback port, warms it up, sends a fixed number of requests
from ``--concurrency`` clients (httpx.AsyncClient, one connection each), prints requests/s, p50 /
p99 latency and the error count, then stops the server. The client runs on the same machine, so
it takes CPU from the server: read the numbers as a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-11-22"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(base: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("server exited before it was ready")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("server not ready in time")


async def load(base: str, bodies: list[bytes], total: int, concurrency: int, engine: str) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))
    params = {"as_of": AS_OF, "engine": engine}
    headers = {"content-type": "application/json"}

    async def client_loop() -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(max_connections=1)) as client:
            for i in counter:
                start = time.perf_counter()
                try:
                    response = await client.post("/screen", params=params, content=bodies[i % len(bodies)], headers=headers)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                errors += not ok

    start = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--engine", choices=["explain", "durable"], default="explain")
    args = parser.parse_args()
    bodies = [p.read_bytes() for p in sorted((ROOT / "patients" / "examples").glob("*.json"))]
    json.loads(bodies[0])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "screening.cli", "serve", "--rules", str(ROOT / "rules"), "--port", str(port)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(base, process)
        asyncio.run(load(base, bodies, 100, 5, args.engine))  # warm-up, not counted
        latencies, errors, elapsed = asyncio.run(load(base, bodies, args.requests, args.concurrency, args.engine))
    finally:
        process.terminate()
        process.wait(timeout=30)
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(f"POST /screen, {args.requests} requests, {args.concurrency} concurrent clients, engine {args.engine}, {len(bodies)} example profiles")
    print(f"{'requests/s':>12} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'errors':>7}")
    print(f"{len(latencies) / elapsed:>12.1f} {p50:>9.1f} {p99:>9.1f} {latencies[-1] * 1000:>9.1f} {errors:>7}")
    print(f"target p99 < 20 ms at 50 clients: {'met' if p99 < 20 else 'NOT met'}")


if __name__ == "__main__":
    main()
