"""HTTP service: screening over FastAPI, run by ``screening serve`` (see :mod:`screening.service.app`).

Nothing is loaded at import: :func:`create_app` builds an application with its own rules.
"""

from .app import create_app

__all__ = ["create_app"]
