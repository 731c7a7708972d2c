"""Load test of the HTTP service: POST /screen (one example patient against every trial) on a real
``screening serve``, with 1 and 2 worker processes side by side in one invocation.

    python benchmarks/service.py [--workers 1 2] [--rates 25 50 100 150 200 250 300] [--seconds 10]

For each worker count it starts ``screening serve --workers N`` on a free loopback port, warms it
up, then runs, each for ``--seconds`` with ``--clients`` keep-alive connections:

- open loop at each offered rate (as wrk2 -R): requests are scheduled at a constant total rate,
  spread evenly over the connections, and latency is measured from the *scheduled* send time, so a
  server that falls behind shows its queueing instead of slowing the client down (no coordinated
  omission). A connection whose previous response is late sends as soon as it can.
- closed loop (saturation): every connection sends its next request as soon as the previous one
  is answered; the achieved rate is the maximum throughput, its latency is mostly queueing.

Every run is bounded: ``rate x seconds`` requests, and requests still unanswered ``--drain``
seconds after the schedule ends count as errors, as does any status other than 200.

The load generator shares the 2-core machine with the server, so it is kept cheap: raw asyncio
HTTP/1.1 over persistent connections, requests serialized once before the run, responses read by
Content-Length without parsing the JSON. Its own CPU use (client CPU, % of one core), the
server's (all its processes) and everything else's on the machine (other CPU: a neighbour's job
makes a run unreliable) are printed per run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-11-22"
TARGET_P99_MS = 20.0
NETWORK_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError)


# ---------------------------------------------------------------------------------------------- server

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(workers: int, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "screening", "serve", "--rules", str(ROOT / "rules"), "--port", str(port),
                             "--workers", str(workers)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(pid: int) -> float | None:
    """CPU time of ``pid`` and its descendants (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            total += cpu_seconds(int(child)) or 0.0
        return total
    except (OSError, IndexError, ValueError):
        return None


def machine_busy_seconds() -> float | None:
    """CPU time spent by every process on the machine, summed over the cores (Linux /proc/stat)."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


# ---------------------------------------------------------------------------------------------- client

def requests_for(port: int) -> list[bytes]:
    """One complete HTTP/1.1 request per example profile, serialized once."""
    out = []
    for path in sorted((ROOT / "patients" / "examples").glob("*.json")):
        body = path.read_bytes()
        head = (f"POST /screen?as_of={AS_OF} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        out.append(head.encode() + body)
    return out


async def read_response(reader: asyncio.StreamReader) -> int:
    """The status of one response, its body read by Content-Length and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            await reader.readexactly(int(line[15:]))
            return status
    raise ConnectionError("response without Content-Length")


class Connection:
    """One keep-alive connection; reopened when the server has closed it (idle timeout)."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, request: bytes) -> int:
        """Send one request and return the response status; 0 when the connection failed."""
        try:
            if self.reader is None or self.reader.at_eof():
                self.close()
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.writer.write(request)
            return await read_response(self.reader)
        except NETWORK_ERRORS:
            self.close()
            return 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Run:
    mode: str  # "open" or "closed"
    offered: float | None  # requests/s; None for the closed loop
    latencies: list[float] = field(default_factory=list)  # seconds, of the requests answered 200
    errors: int = 0
    elapsed: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float | None = None
    other_cpu: float | None = None  # everything else on the machine: a busy neighbour skews the run

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000 if ordered else float("nan")


async def open_loop(port: int, requests: list[bytes], rate: float, seconds: float, clients: int, drain: float) -> Run:
    run = Run("open", rate)
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2

    async def client(index: int, connection: Connection) -> None:
        for k in range(index, total, clients):  # request k is due at start + k / rate
            scheduled = start + k / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if await connection.exchange(requests[k % len(requests)]) == 200:
                run.latencies.append(time.perf_counter() - scheduled)
        connection.close()

    await timed(run, [client(i, Connection(port)) for i in range(clients)], seconds + drain)
    run.errors = total - len(run.latencies)  # failed, non-200, or still unanswered after the drain
    return run


async def closed_loop(port: int, requests: list[bytes], seconds: float, clients: int, drain: float) -> Run:
    run = Run("closed", None)
    stop = time.perf_counter() + seconds
    sent = 0

    async def client(connection: Connection) -> None:
        nonlocal sent
        while time.perf_counter() < stop:
            sent += 1
            begin = time.perf_counter()
            if await connection.exchange(requests[sent % len(requests)]) == 200:
                run.latencies.append(time.perf_counter() - begin)
        connection.close()

    await timed(run, [client(Connection(port)) for _ in range(clients)], seconds + drain)
    run.errors = sent - len(run.latencies)
    return run


async def timed(run: Run, clients: list, limit: float) -> None:
    """Run the clients to completion or for ``limit`` seconds, recording elapsed and client CPU time."""
    cpu, begin = time.process_time(), time.perf_counter()
    tasks = [asyncio.ensure_future(c) for c in clients]
    _, pending = await asyncio.wait(tasks, timeout=limit)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    run.elapsed = time.perf_counter() - begin
    run.client_cpu = time.process_time() - cpu


# ---------------------------------------------------------------------------------------------- report

def row(workers: int, run: Run) -> str:
    answered = len(run.latencies)
    server = f"{run.server_cpu / run.elapsed * 100:.0f}" if run.server_cpu is not None else "-"
    other = f"{max(0.0, run.other_cpu) / run.elapsed * 100:.0f}" if run.other_cpu is not None else "-"
    offered = f"{run.offered:g}" if run.offered is not None else "max"
    return (f"| {workers} | {run.mode} | {offered} | {answered / run.elapsed:.1f} | {run.percentile(0.50):.1f} | "
            f"{run.percentile(0.90):.1f} | {run.percentile(0.99):.1f} | {max(run.latencies, default=0) * 1000:.1f} | "
            f"{run.errors} | {run.client_cpu / run.elapsed * 100:.0f} | {server} | {other} |")


async def measure(workers: int, args: argparse.Namespace) -> list[Run]:
    port = free_port()
    process = start_server(workers, port)
    requests = requests_for(port)
    try:
        deadline = time.monotonic() + 120
        while True:  # warm-up, until a short saturating burst reaches every worker without an error
            assert process.poll() is None, "server exited"
            assert time.monotonic() < deadline, "server not ready in time"
            warm = await closed_loop(port, requests, 3.0, args.clients, 5.0)
            if warm.errors == 0 and warm.latencies:
                break
            await asyncio.sleep(0.5)
        runs = []
        for rate in [*args.rates, None]:
            server_before, busy_before = cpu_seconds(process.pid), machine_busy_seconds()
            if rate is not None:
                run = await open_loop(port, requests, rate, args.seconds, args.clients, args.drain)
            else:
                run = await closed_loop(port, requests, args.seconds, args.clients, args.drain)
            server_after, busy_after = cpu_seconds(process.pid), machine_busy_seconds()
            if server_before is not None and server_after is not None:
                run.server_cpu = server_after - server_before
                if busy_before is not None and busy_after is not None:
                    run.other_cpu = busy_after - busy_before - run.server_cpu - run.client_cpu
            print(row(workers, run), flush=True)
            runs.append(run)
            await asyncio.sleep(1.0)  # let the server's queue empty
        return runs
    finally:
        stop_server(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rates", type=float, nargs="+", default=[25, 50, 100, 150, 200, 250, 300],
                        help="open-loop offered rates, requests/s in total")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each run")
    parser.add_argument("--clients", type=int, default=50, help="concurrent keep-alive connections")
    parser.add_argument("--drain", type=float, default=10.0, help="seconds to wait for late responses")
    args = parser.parse_args()
    examples = len(list((ROOT / "patients" / "examples").glob("*.json")))
    print(f"POST /screen?as_of={AS_OF} (all trials, explain engine), {examples} example profiles in turn, "
          f"{args.clients} connections, {args.seconds:g} s per run, {os.cpu_count()} CPUs\n")
    print("| workers | loop | offered req/s | achieved req/s | p50 ms | p90 ms | p99 ms | max ms | errors "
          "| client CPU % | server CPU % | other CPU % |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    results = {workers: asyncio.run(measure(workers, args)) for workers in args.workers}
    print()
    for workers, runs in results.items():
        met = [r.offered for r in runs if r.mode == "open" and r.errors == 0 and r.percentile(0.99) < TARGET_P99_MS]
        saturation = runs[-1]
        print(f"{workers} worker(s): p99 < {TARGET_P99_MS:g} ms with no error at offered "
              f"{', '.join(f'{r:g}' for r in met) or 'no tested rate'} req/s; "
              f"saturation {len(saturation.latencies) / saturation.elapsed:.0f} req/s")


if __name__ == "__main__":
    main()
