"""Unit normalization: a lab value in any UCUM unit to its analyte's canonical unit.

UCUM (unitsofmeasure.org) codes are translated to pint (a maintained units library that knows
SI prefixes and dimensions) with a few rules: an ``{annotation}`` means nothing (after a symbol it
goes, standing alone it is 1), ``10*9`` is 1e9, ``[IU]`` is an arbitrary international unit (the
enzyme unit for ALT/AST, see :mod:`screening.clinical.analytes`), ``meq`` is mmol divided by the
analyte's valence, ``.`` is a product, digits after a unit are its power (``mm3``) and a leading
``/`` is a reciprocal. Mass <-> substance uses the analyte's molar mass (see :mod:`screening.clinical.analytes`). Anything else that does not
convert is a :class:`UnitError`, never a guess. Factors are computed once per (analyte, unit);
those of the units results commonly come in are precomputed (:mod:`screening.clinical.unit_factors`).
"""

from __future__ import annotations

import math
import re
import threading
from pathlib import Path
from functools import cache, lru_cache
from typing import TYPE_CHECKING

from ..errors import UnitError
from .analytes import ANALYTES, Analyte
from .unit_factors import REPORTED_UNIT_FACTORS

_UCUM_CHARS = re.compile(r"^[A-Za-z0-9\[\]{}/.*^%()\-]*$")
_ANNOTATION = re.compile(r"\{[^{}]*\}")
_POWER_OF_TEN = re.compile(r"10\*(-?\d+)|10\^(-?\d+)")
_EQUIVALENT = re.compile(r"(?<![A-Za-z])([munp]?)(?:eq|Eq)(?![A-Za-z])")
_EXPONENT = re.compile(r"(?<=[A-Za-z\]])(-?\d+)")  # UCUM writes a power as digits after the unit: mm3, s-1

if TYPE_CHECKING:
    import pint

_PINT = threading.Lock()  # pint's registry is shared state: a conversion by molar mass enables a context on it

SIGNIFICANT_DIGITS = 12  # converted values are rounded so float noise cannot cross a cut-off


@cache
def _registry() -> pint.UnitRegistry:
    """The pint registry, built on the first conversion that needs it (importing pint and building
    its registry take about half a second, which a value already in canonical units never pays)."""
    import pint

    registry = pint.UnitRegistry(autoconvert_offset_to_baseunit=False)
    registry.define("international_unit = [international_unit] = IU")
    return registry


def load_registry() -> None:
    """Build the unit registry now rather than at the first conversion (it takes a few tenths
    of a second): a worker process does it while it waits for its first chunk."""
    with _PINT:
        _registry()


def _annotation(match: re.Match[str]) -> str:
    """UCUM annotations mean nothing: one after a symbol (``U/L{37Cel}``) goes, one standing for
    a unit (``{cells}/uL``, ``/{HPF}``) is 1."""
    before = match.string[match.start() - 1] if match.start() else ""
    return "" if before.isalnum() or before in ")]%" else "1"


def _to_pint(ucum: str, analyte: Analyte) -> str:
    if not ucum or not _UCUM_CHARS.match(_ANNOTATION.sub("", ucum)):  # an annotation may hold any text but braces
        raise UnitError(f"{ucum!r} is not a UCUM unit", field="unit")
    expr = _ANNOTATION.sub(_annotation, ucum).replace("[IU]", "IU").replace("[iU]", "IU")
    if analyte.international_unit is not None:
        expr = expr.replace("IU", analyte.international_unit)
    expr = _EXPONENT.sub(r"**\1", expr)
    expr = _POWER_OF_TEN.sub(lambda m: f"1e{m.group(1) or m.group(2)}", expr)
    if _EQUIVALENT.search(expr):
        if analyte.valence is None:
            raise UnitError(f"{ucum!r}: equivalents need a valence, which {analyte.name} has none of", field="unit")
        expr = _EQUIVALENT.sub(lambda m: f"({m.group(1)}mol/{analyte.valence})", expr)
    expr = expr.replace("[", "").replace("]", "").replace(".", "*")
    return "1" + expr if expr.startswith("/") else expr or "1"


@lru_cache(maxsize=4096)
def conversion_factor(analyte_name: str, ucum: str) -> float:
    """Factor that turns a value of ``analyte_name`` in ``ucum`` into its canonical unit: from the
    precomputed table for the units results commonly come in, otherwise computed with pint."""
    analyte = ANALYTES[analyte_name]
    if analyte.unit is None:
        raise UnitError(f"{analyte.display} is qualitative and takes no unit", field="unit")
    if analyte.unit == "1" and _ANNOTATION.sub("", ucum) not in ("", "1"):
        raise UnitError(f"{ucum!r}: {analyte.display} is a unitless ratio (UCUM '1')", field="unit")
    if ucum == analyte.unit:
        return 1.0
    known = REPORTED_UNIT_FACTORS.get((analyte_name, ucum))
    return known if known is not None else pint_factor(analyte, ucum)


def pint_factor(analyte: Analyte, ucum: str) -> float:
    """The factor from ``ucum`` to the analyte's canonical unit, computed with pint (one thread at a
    time: otherwise a conversion could use another thread's molar mass, or fail)."""
    with _PINT:
        return _pint_factor(analyte, ucum)


def _pint_factor(analyte: Analyte, ucum: str) -> float:
    import pint  # loaded by _registry()

    registry = _registry()
    try:
        source = registry.parse_expression(_to_pint(ucum, analyte))
        target = registry.parse_expression(_to_pint(analyte.unit, analyte))  # type: ignore[arg-type]
        if not isinstance(source, pint.Quantity):
            source = registry.Quantity(source, "")
        if not isinstance(target, pint.Quantity):
            target = registry.Quantity(target, "")
        factor: float | None = None
        if source.dimensionality == target.dimensionality:
            factor = float((source / target).to("").magnitude)
        elif analyte.molar_mass is not None:
            with registry.context("chemistry", mw=analyte.molar_mass * registry("g/mol")):
                factor = float(source.to(target.units).magnitude / target.magnitude)
    except UnitError:
        raise
    except Exception as exc:  # noqa: BLE001 - pint's parser raises many kinds (TokenError, AssertionError...)
        raise UnitError(f"{ucum!r} is not a unit this engine understands ({type(exc).__name__})", field="unit") from None
    if factor is None:
        raise UnitError(f"{ucum!r} cannot be converted to {analyte.unit} for {analyte.display}", field="unit")
    if not (math.isfinite(factor) and factor > 0):
        raise UnitError(f"{ucum!r} is not a usable unit for {analyte.display}", field="unit")
    return factor


def reported_unit_table() -> str:
    """The source of :mod:`screening.clinical.unit_factors`: pint's factor for every unit an
    analyte lists in ``reported_in`` (see that module for the command that writes it)."""
    rows = "".join(f'    ("{a.name}", "{u}"): {pint_factor(a, u)!r},\n' for a in ANALYTES.values() for u in a.reported_in)
    return f"{_TABLE_HEADER}\nREPORTED_UNIT_FACTORS: dict[tuple[str, str], float] = {{\n{rows}}}\n"


def write_reported_unit_table() -> None:
    """Rewrite :mod:`screening.clinical.unit_factors` from :func:`reported_unit_table`. The text is
    made before the file is opened: this module imports the table, so a shell redirect into it
    (which empties it first) would break the import that writes it."""
    text = reported_unit_table()
    Path(__file__).with_name("unit_factors.py").write_text(text, encoding="utf-8")


_TABLE_HEADER = '''"""Conversion factors of the units lab results commonly come in (``Analyte.reported_in``), as pint
computes them: a run whose results are all in these units (or canonical ones) never imports pint,
whose import and registry take about half a second.

Written by :func:`screening.clinical.units.reported_unit_table`, from the repository root::

    python -c 'from screening.clinical.units import write_reported_unit_table as w; w()'

and checked against it by the tests, so the table cannot drift from what pint computes.
"""
'''


def check_unit(analyte_name: str, ucum: str) -> None:
    """Raise :class:`UnitError` unless ``ucum`` converts to the analyte's canonical unit."""
    conversion_factor(analyte_name, ucum)


def to_canonical(analyte_name: str, value: float, ucum: str) -> float:
    """``value`` in ``ucum``, expressed in the analyte's canonical unit."""
    return round_significant(value * conversion_factor(analyte_name, ucum))


def round_significant(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    return float(format(value, _SIGNIFICANT_FORMAT.get(digits) or f".{digits}g"))


_SIGNIFICANT_FORMAT = {d: f".{d}g" for d in range(1, 18)}  # a nested format spec is parsed on every call: three times slower
