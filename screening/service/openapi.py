"""The committed OpenAPI document ``openapi.json`` (repository root), checked by a test.

Regenerate after changing an endpoint or a model:

    python -m screening.service.openapi > openapi.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .app import create_app
from .config import ServiceConfig

ROOT = Path(__file__).resolve().parents[2]


def document() -> dict[str, Any]:
    """The app's current OpenAPI document (independent of the rules loaded)."""
    return create_app(ServiceConfig(ROOT / "rules")).openapi()


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(document()))
