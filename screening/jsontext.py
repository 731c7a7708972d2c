"""JSON text from outside (request bodies, profile files, NDJSON lines, bulk exports), decoded in
one place: every way it can fail is a :class:`JsonProblem` saying why, which each reader turns
into its own error (a 422, an error row, a warning, a :class:`~screening.errors.PatientDataError`).
"""

from __future__ import annotations

import json
from typing import Any


class JsonProblem(ValueError):
    """Text that does not decode as JSON; the message says why, never quoting the text."""


def decode_json(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"column {exc.colno}" if exc.lineno == 1 else f"line {exc.lineno} column {exc.colno}"
        problem = exc.msg.removesuffix(" at")  # "Unterminated string starting at": the position follows
        raise JsonProblem(f"not valid JSON: {problem} at {where}") from None
    except UnicodeDecodeError:
        raise JsonProblem("not UTF-8 text") from None
    except RecursionError:  # json's decoder recurses per nesting level: "[" * 100_000
        raise JsonProblem("not valid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise JsonProblem(f"not valid JSON: {exc}") from None
