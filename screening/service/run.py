"""Running the service under uvicorn (``screening serve``): one process, or with ``workers > 1`` a
supervisor and that many worker processes sharing the listening socket (one per core is the
usual production choice).

Every process builds its application with the factory :data:`APP_FACTORY`, configured through the
environment (:mod:`screening.service.config`); logs go to stderr with the process id, request
lines only (no query string, header or body: see :mod:`screening.service.middleware`).
"""

from __future__ import annotations

import copy
import os
from dataclasses import replace
from typing import Any

from ..rules.loader import load_rules
from .config import ServiceConfig

APP_FACTORY = "screening.service.app:create_app"


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration plus the service's request log (applied in every worker)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["service"] = {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"}
    config["handlers"]["service"] = {"class": "logging.StreamHandler", "formatter": "service", "stream": "ext://sys.stderr"}
    config["loggers"]["screening"] = {"handlers": ["service"], "level": "INFO", "propagate": False}
    return config


def serve(config: ServiceConfig, host: str, port: int, workers: int = 1) -> None:
    """Serve until SIGINT/SIGTERM. The rules are checked first, so broken rules raise
    :class:`~screening.errors.RulesError` here before any worker starts."""
    import uvicorn

    load_rules(config.rules_dir)
    config = replace(config, supervisor_pid=os.getpid() if workers > 1 else None)
    os.environ.update(config.to_env())
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, access_log=False,
                log_config=log_config(), log_level="info")
