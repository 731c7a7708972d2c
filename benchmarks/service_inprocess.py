"""Where a POST /screen request's server time goes, with no HTTP server or socket in the way.

    python benchmarks/service_inprocess.py [--rounds 20]

Calls the FastAPI application directly as ASGI (the 21 example profiles in turn, logging off),
then does the same work without it (parse the profile, screen it against both trials, write the
JSON), side by side, three times: the difference is the framework's request handling. The rest of
the server CPU a load run shows (``service.py``) is uvicorn's HTTP and socket work.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import time
from pathlib import Path

from screening import load_rules, parse_patient, screen
from screening.service.app import create_app

ROOT = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 11, 22)


async def post(app, body: bytes) -> None:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http", "path": "/screen",
             "raw_path": b"/screen", "query_string": f"as_of={AS_OF}".encode(), "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 8000), "state": {},
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        return messages.pop() if messages else {"type": "http.disconnect"}

    status: list[int] = []

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    if status != [200]:
        raise SystemExit(f"POST /screen answered {status}")


async def main(rounds: int) -> None:
    logging.disable(logging.CRITICAL)
    app = create_app()
    rules = load_rules(ROOT / "rules")
    bodies = [p.read_bytes() for p in sorted((ROOT / "patients" / "examples").glob("*.json"))]
    n = rounds * len(bodies)
    async with app.router.lifespan_context(app):
        for body in bodies:
            await post(app, body)
        print(f"{'ASGI app ms':>12} {'parse+screen+JSON ms':>21} {'screen alone ms':>16} {'framework ms':>13}   (per request)")
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(rounds):
                for body in bodies:
                    await post(app, body)
            asgi = (time.perf_counter() - start) / n * 1e3
            profiles = []
            start = time.perf_counter()
            for _ in range(rounds):
                for body in bodies:
                    profile = parse_patient(json.loads(body))
                    screen(profile, rules, as_of=AS_OF).model_dump_json().encode()
                    profiles.append(profile)
            direct = (time.perf_counter() - start) / n * 1e3
            start = time.perf_counter()
            for profile in profiles:
                screen(profile, rules, as_of=AS_OF)
            alone = (time.perf_counter() - start) / n * 1e3
            print(f"{asgi:>12.3f} {direct:>21.3f} {alone:>16.3f} {asgi - direct:>13.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="passes over the 21 examples per measurement")
    asyncio.run(main(parser.parse_args().rounds))
