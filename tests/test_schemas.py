"""The committed JSON Schemas are the ones the models generate."""

from __future__ import annotations

import pytest

from screening.schemas import SCHEMAS, render

from .conftest import ROOT


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_committed_schema_is_current(name):
    committed = (ROOT / "schemas" / name).read_text()
    assert committed == render(SCHEMAS[name]), f"run: screening schema --write schemas"
