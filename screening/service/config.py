"""The service's configuration, and its round trip through environment variables.

Worker processes (``screening serve --workers N``) are started fresh by uvicorn's supervisor and
build their application with :func:`~screening.service.app.create_app`, which reads
:meth:`ServiceConfig.from_env`; the CLI writes :meth:`ServiceConfig.to_env` before starting them.
The same variables configure ``uvicorn --factory screening.service.app:create_app``:

    SCREENING_RULES              rules directory (default ./rules)
    SCREENING_MAX_BODY_BYTES     largest request body (413 above)
    SCREENING_MAX_BATCH_ITEMS    most inputs in one batch (413 above)
    SCREENING_RELOAD_ON_SIGHUP   1: SIGHUP to this process reloads its rules
    SCREENING_SUPERVISOR_PID     POST /admin/reload also sends SIGHUP to this process (uvicorn's
                                 supervisor, which then replaces every worker one at a time)
    SCREENING_ADMIN_TOKEN        when set, POST /admin/reload requires "Authorization: Bearer <token>"
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # a Synthea Bundle is a few MB
DEFAULT_MAX_BATCH_ITEMS = 1000

RULES = "SCREENING_RULES"
MAX_BODY_BYTES = "SCREENING_MAX_BODY_BYTES"
MAX_BATCH_ITEMS = "SCREENING_MAX_BATCH_ITEMS"
RELOAD_ON_SIGHUP = "SCREENING_RELOAD_ON_SIGHUP"
SUPERVISOR_PID = "SCREENING_SUPERVISOR_PID"
ADMIN_TOKEN = "SCREENING_ADMIN_TOKEN"


@dataclass(frozen=True)
class ServiceConfig:
    rules_dir: Path = Path("rules")
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_batch_items: int = DEFAULT_MAX_BATCH_ITEMS
    reload_on_sighup: bool = False
    supervisor_pid: int | None = None
    admin_token: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules_dir", Path(self.rules_dir))
        if self.max_body_bytes < 1 or self.max_batch_items < 1:
            raise ValueError("max_body_bytes and max_batch_items must be at least 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ServiceConfig:
        """The configuration the variables above describe; unset ones take the defaults."""
        def number(name: str, default: int | None) -> int | None:
            value = environ.get(name, "")
            if not value:
                return default
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"${name}: not a whole number: {value!r}") from None

        return cls(rules_dir=Path(environ.get(RULES) or "rules"),
                   max_body_bytes=number(MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES),
                   max_batch_items=number(MAX_BATCH_ITEMS, DEFAULT_MAX_BATCH_ITEMS),
                   reload_on_sighup=environ.get(RELOAD_ON_SIGHUP, "") == "1",
                   supervisor_pid=number(SUPERVISOR_PID, None),
                   admin_token=environ.get(ADMIN_TOKEN) or None)

    def to_env(self) -> dict[str, str]:
        """Every variable above, set so that :meth:`from_env` gives this configuration back in
        another process (an unset option is an empty string, which also clears a stale value)."""
        return {RULES: str(self.rules_dir), MAX_BODY_BYTES: str(self.max_body_bytes),
                MAX_BATCH_ITEMS: str(self.max_batch_items), RELOAD_ON_SIGHUP: "1" if self.reload_on_sighup else "",
                SUPERVISOR_PID: "" if self.supervisor_pid is None else str(self.supervisor_pid),
                ADMIN_TOKEN: self.admin_token or ""}
