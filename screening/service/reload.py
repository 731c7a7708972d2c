"""Reloading the rules of a running service: who may ask, and how every worker hears of it.

- ``POST /admin/reload`` reloads the worker that receives it; with an admin token configured it
  needs ``Authorization: Bearer <token>`` (:func:`refusal`).
- SIGHUP to a worker reloads that worker (:func:`sighup_reloads`, installed when configured).
- With several workers (``screening serve --workers N``), uvicorn's supervisor answers SIGHUP by
  replacing the workers one at a time, each replacement loading the rules from disk and taking
  over only once it serves (uvicorn >= 0.51); a replacement that fails to start (broken rules)
  aborts the restart and the old workers keep serving. ``POST /admin/reload`` then also sends
  SIGHUP to the supervisor (:func:`signal_supervisor`), so one request reloads every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio

from ..errors import RulesError
from .middleware import logger


def refusal(authorization: str | None, token: str | None) -> tuple[int, str] | None:
    """``None`` when the request may reload, else (status, message): 401 without a bearer token,
    403 with a wrong one. No token configured: anyone on the (loopback by default) address may."""
    if token is None:
        return None
    scheme, _, given = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return 401, "this endpoint needs the header Authorization: Bearer <admin token>"
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return 403, "wrong admin token"
    return None


def signal_supervisor(pid: int | None) -> None:
    """Ask the supervisor to replace every worker (see the module docstring)."""
    if pid is not None:
        os.kill(pid, signal.SIGHUP)
        logger.info("asked supervisor %d to restart every worker with the new rules", pid)


@contextlib.asynccontextmanager
async def sighup_reloads(reload: Callable[[], Any], describe: Callable[[], str]) -> AsyncIterator[None]:
    """While open, SIGHUP to this process runs ``reload`` in a thread (main thread only, POSIX)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGHUP"):
        yield
        return
    loop = asyncio.get_running_loop()

    async def run() -> None:
        try:
            await anyio.to_thread.run_sync(reload)
            logger.info("rules reloaded on SIGHUP: %s", describe())
        except RulesError as exc:
            logger.error("reload on SIGHUP failed, old rules kept: %s", exc)

    running: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    def on_sighup() -> None:
        task = loop.create_task(run())
        running.add(task)
        task.add_done_callback(running.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
