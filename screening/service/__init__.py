"""HTTP service: screening over FastAPI, run by ``screening serve`` (see :mod:`screening.service.app`).

Nothing is loaded at import: :func:`create_app` builds an application with its own rules, from a
:class:`ServiceConfig` (by default read from environment variables, as worker processes do).
"""

from .app import create_app
from .config import ServiceConfig

__all__ = ["ServiceConfig", "create_app"]
