"""JSON Schemas of the public data shapes, generated from the pydantic models (the single source
of truth) and committed under ``schemas/`` so other tools can validate without Python."""

from __future__ import annotations

import json
from pathlib import Path

from .patient.model import PatientProfile
from .results import ScreeningResult
from .rules.codelists import CodeList
from .rules.model import Trial

SCHEMAS = {
    "patient-profile.schema.json": PatientProfile,
    "screening-result.schema.json": ScreeningResult,
    "trial-rules.schema.json": Trial,
    "code-list.schema.json": CodeList,
}


def render(model: type) -> str:
    return json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in SCHEMAS.items():
        path = directory / name
        path.write_text(render(model))
        written.append(path)
    return written
