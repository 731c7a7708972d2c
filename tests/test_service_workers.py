"""``screening serve --workers 2`` as a real supervisor with two worker processes: configuration
reaches the workers through the environment, and a reload (SIGHUP to the supervisor, or one
``POST /admin/reload``) replaces every worker with one serving the new rules, while broken rules
leave the running workers as they were."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from .conftest import AS_OF, ROOT, RULES_DIR

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir() or not hasattr(signal, "SIGHUP"),
                                reason="reads worker pids from Linux /proc; SIGHUP is POSIX")

P01 = ROOT / "patients" / "examples" / "P01-jakarta-cpb-si-eligible.json"
TOKEN = "s3cret-admin-token"
TRIAL = "NCT04357600"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _workers(supervisor: int) -> set[int]:
    """The supervisor's worker processes (multiprocessing also starts a resource tracker)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    workers = set()
    for pid in children:
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.add(int(pid))
        except FileNotFoundError:  # exited meanwhile
            pass
    return workers


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if condition():
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.2)


def _edit_version(rules_dir: Path, old: str, new: str) -> None:
    path = rules_dir / f"{TRIAL}.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_two_workers_reload_together(tmp_path):
    rules_dir = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules_dir)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    env = {**os.environ, "SCREENING_ADMIN_TOKEN": TOKEN}
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "screening", "serve", "--rules", str(rules_dir), "--port", str(port),
                                    "--workers", "2"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)

    def versions() -> set[str]:
        """The rules versions answered over fresh connections (which spread over the workers)."""
        answers = set()
        for _ in range(10):
            body = httpx.post(f"{base}/screen", params={"as_of": AS_OF.isoformat(), "trial": TRIAL},
                              content=P01.read_bytes(), headers={"content-type": "application/json"}, timeout=30).json()
            answers.add(body["results"][0]["rules_version"])
        return answers

    def replaced(before: set[int]) -> Callable[[], bool]:
        return lambda: len(now := _workers(process.pid)) == 2 and not now & before

    try:
        _wait_for(lambda: len(_workers(process.pid)) == 2 and httpx.get(f"{base}/health", timeout=1).status_code == 200,
                  "two workers serving")
        assert versions() == {"2026.11.1"}

        # SIGHUP to the supervisor: every worker is replaced by one that loaded the edited rules
        first = _workers(process.pid)
        _edit_version(rules_dir, 'version: "2026.11.1"', 'version: "2026.11.2"')
        process.send_signal(signal.SIGHUP)
        _wait_for(replaced(first), "both workers replaced after SIGHUP")
        assert versions() == {"2026.11.2"}

        # broken rules: the replacement fails to start, the restart is aborted, the workers stay
        second = _workers(process.pid)
        good = (rules_dir / f"{TRIAL}.yaml").read_text(encoding="utf-8")
        (rules_dir / f"{TRIAL}.yaml").write_text(good.replace("type: range", "type: rnage", 1), encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        _wait_for(lambda: "aborting the restart" in log_path.read_text(errors="replace"), "the restart aborted")
        assert _workers(process.pid) == second
        assert versions() == {"2026.11.2"}

        # POST /admin/reload: the token is required (it reached the workers through the environment)
        reload = f"{base}/admin/reload"
        assert httpx.post(reload, timeout=30).status_code == 401
        assert httpx.post(reload, headers={"authorization": "Bearer wrong"}, timeout=30).status_code == 403
        broken = httpx.post(reload, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert broken.status_code == 422 and broken.json()["criterion"] == "I1"
        assert _workers(process.pid) == second

        # ... and one accepted request reloads every worker
        (rules_dir / f"{TRIAL}.yaml").write_text(good.replace('version: "2026.11.2"', 'version: "2026.11.3"'), encoding="utf-8")
        accepted = httpx.post(reload, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert accepted.status_code == 200, accepted.text
        _wait_for(replaced(second), "both workers replaced after POST /admin/reload")
        assert versions() == {"2026.11.3"}
    finally:
        process.terminate()
        process.wait(timeout=60)
    log_text = log_path.read_text(errors="replace")
    assert "path=/screen status=200" in log_text and "path=/admin/reload status=401" in log_text
    assert "P01" not in log_text and TOKEN not in log_text
    assert json.loads(P01.read_text(encoding="utf-8"))["id"] == "P01"  # the check above looks for a real value
