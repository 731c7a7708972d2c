"""The FastAPI application: ``create_app(rules_dir)`` builds one, with its own loaded rules.

    screening serve --rules rules --port 8000                  # the CLI runs it under uvicorn
    uvicorn --factory screening.service.app:create_app         # or uvicorn directly ($SCREENING_RULES)

Endpoints: ``GET /health``, ``GET /trials``, ``GET /trials/{trial_id}``, ``POST /screen``,
``POST /screen/batch``, ``POST /admin/reload``. Every error is an :class:`ErrorBody` JSON object:
422 for input that cannot be used (with the field path), 404 for an unknown trial, 413 for a body
over ``max_body_bytes`` (or a batch over ``max_batch_items``), never a 500 for what a client sends.
The screening itself runs on the event loop (a patient takes about 2 ms); a batch yields to the
loop between patients so health checks and other requests are not starved.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from .. import __version__, screen
from ..errors import PatientDataError, RulesError, UnknownTrialError
from ..patient.io import _field_path, parse_patient
from ..patient.model import PatientProfile
from ..rules.loader import RuleSet
from .middleware import RequestContext, logger
from .models import DATE_PATTERN, BatchError, ErrorBody, Health, ScreenRequest, ScreenResponse, ServiceEngine, TrialInfo
from .state import RulesState

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # a Synthea Bundle is a few MB
DEFAULT_MAX_BATCH_ITEMS = 1000
EARLIEST, LATEST = dt.date(1900, 1, 1), dt.date(2999, 12, 31)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-lines")


class ServiceError(Exception):
    """An error answered as ``status`` with an :class:`ErrorBody`."""

    def __init__(self, status: int, error: str, **where: Any):
        super().__init__(error)
        self.status = status
        self.body = {"error": error, **{k: v for k, v in where.items() if v is not None}}


def _error_response(request: Request, status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse({**body, "request_id": request.scope.get("state", {}).get("request_id")}, status_code=status)


def _patient_error(exc: PatientDataError, prefix: str = "") -> ServiceError:
    field = f"{prefix}{exc.field}" if prefix and exc.field else (exc.field or (prefix.rstrip(".") or None))
    return ServiceError(422, exc.problem, field=field, patient_id=exc.patient_id)


# ---------------------------------------------------------------------------------------------- inputs

async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) one whose declared or actual size is over ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ServiceError(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise ServiceError(413, f"body of {declared} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServiceError(413, f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode_json(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except RecursionError:
        raise ServiceError(422, "JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ServiceError(422, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError:  # UnicodeDecodeError included
        raise ServiceError(422, "not UTF-8 JSON text") from None


def _date(value: str | None, field: str) -> dt.date | None:
    if value is None:
        return None
    try:
        date = dt.date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        date = None
    if date is None:
        raise ServiceError(422, f"not a date in YYYY-MM-DD form: {value!r}", field=field)
    if not EARLIEST <= date <= LATEST:
        raise ServiceError(422, f"screening date outside {EARLIEST} .. {LATEST}", field=field)
    return date


class _Options:
    """``as_of``, ``trial`` and ``engine`` from the query string; the body may give them instead."""

    def __init__(self, as_of: str | None, trial: list[str] | None, engine: str | None):
        self.as_of = _date(as_of, "as_of")
        self.trial = tuple(trial) if trial else None
        self.engine = engine

    def merged(self, envelope: ScreenRequest) -> _Options:
        merged = _Options(None, None, None)
        for name, value in (("as_of", _date(envelope.as_of, "as_of")), ("trial", envelope.trial), ("engine", envelope.engine)):
            if value is not None and getattr(self, name) is not None:
                raise ServiceError(422, f"{name} given both in the query string and in the body", field=name)
            setattr(merged, name, value if value is not None else getattr(self, name))
        return merged


def _to_profile(data: Any, options: _Options) -> tuple[PatientProfile, tuple | None, _Options]:
    """A decoded body as (profile, FHIR warnings or None for a native profile, options)."""
    prefix = ""
    if isinstance(data, dict) and "patient" in data and "resourceType" not in data:
        try:
            envelope = ScreenRequest.model_validate(data)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            raise ServiceError(422, error["msg"], field=_field_path(tuple(error["loc"])) or None) from None
        options, data, prefix = options.merged(envelope), envelope.patient, "patient."
    try:
        if isinstance(data, dict) and "resourceType" in data:
            from ..fhir import bundle_to_profile  # fhir.resources is slow to import: on first Bundle

            mapped = bundle_to_profile(data)
            return mapped.profile, mapped.warnings, options
        return parse_patient(data), None, options
    except PatientDataError as exc:
        raise _patient_error(exc, prefix) from None
    except RecursionError:
        raise ServiceError(422, "input nested too deeply") from None


def _screen(data: Any, options: _Options, rules: RuleSet) -> dict[str, Any]:
    profile, warnings, options = _to_profile(data, options)
    try:
        result = screen(profile, rules, as_of=options.as_of or dt.date.today(), trials=options.trial,
                        engine=options.engine or "explain")
    except UnknownTrialError as exc:
        raise ServiceError(404, str(exc), trial_ids=tuple(exc.trial_ids)) from None
    except PatientDataError as exc:  # e.g. a unit that parses but does not convert for its analyte
        raise _patient_error(exc) from None
    body = result.model_dump(mode="json")
    if warnings is not None:
        body["warnings"] = [w.model_dump(mode="json") for w in warnings]
    return body


def _batch_items(raw: bytes, content_type: str, max_items: int) -> list[Any]:
    """Decoded batch inputs; an NDJSON line that is not JSON becomes a :class:`ServiceError` item."""
    if content_type.split(";")[0].strip().lower() in NDJSON_TYPES:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ServiceError(422, "NDJSON body is not UTF-8 text") from None
        items: list[Any] = []
        for line in text.splitlines():
            if line.strip():
                if len(items) >= max_items:
                    raise ServiceError(413, f"more than {max_items} inputs in one batch")
                try:
                    items.append(_decode_json(line))
                except ServiceError as exc:
                    items.append(exc)
        return items
    data = _decode_json(raw)
    if not isinstance(data, list):
        raise ServiceError(422, "a batch is a JSON array of patients (or NDJSON with Content-Type application/x-ndjson)")
    if len(data) > max_items:
        raise ServiceError(413, f"{len(data)} inputs in one batch: at most {max_items}")
    return data


# ---------------------------------------------------------------------------------------------- OpenAPI

def _patient_schemas() -> dict[str, Any]:
    profile = PatientProfile.model_json_schema(ref_template="#/components/schemas/{model}")
    components = profile.pop("$defs", {})
    components["PatientProfile"] = profile
    components["FhirBundle"] = {
        "title": "FhirBundle", "type": "object", "required": ["resourceType"],
        "description": "A FHIR R4 Bundle about one patient (mapped by screening.fhir; see README 'FHIR R4 input').",
        "properties": {"resourceType": {"const": "Bundle"}, "type": {"type": "string"},
                       "entry": {"type": "array", "items": {"type": "object"}}},
    }
    return components


_INPUT = {"anyOf": [{"$ref": "#/components/schemas/PatientProfile"}, {"$ref": "#/components/schemas/FhirBundle"},
                    {"$ref": "#/components/schemas/ScreenRequest"}]}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in codes}


# ---------------------------------------------------------------------------------------------- app

AsOf = Annotated[str | None, Query(pattern=DATE_PATTERN, description="Screening date, YYYY-MM-DD (default: today)")]
Trials = Annotated[list[str] | None, Query(description="Only this trial (repeatable)")]
Engine = Annotated[ServiceEngine | None, Query(description="explain (reference, default) or durable (durable_rules Rete)")]


def create_app(rules_dir: str | Path | None = None, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               max_batch_items: int = DEFAULT_MAX_BATCH_ITEMS, reload_on_sighup: bool = False) -> FastAPI:
    """A new application serving the rules in ``rules_dir`` (default ``$SCREENING_RULES``, else
    ``./rules``), loaded now: a :class:`RulesError` here means the service does not start.

    ``reload_on_sighup`` installs a SIGHUP handler (main thread only) that reloads like
    ``POST /admin/reload``.
    """
    state = RulesState(rules_dir if rules_dir is not None else os.environ.get("SCREENING_RULES", "rules"))

    def do_reload() -> Health:
        snapshot = state.reload()
        return _health(snapshot.rules, snapshot.generation)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        installed = False
        if reload_on_sighup and threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
            loop = asyncio.get_running_loop()

            def on_sighup() -> None:
                async def run() -> None:
                    try:
                        await anyio.to_thread.run_sync(do_reload)
                        logger.info("rules reloaded on SIGHUP: generation %d", state.current.generation)
                    except RulesError as exc:
                        logger.error("reload on SIGHUP failed, old rules kept: %s", exc)
                loop.create_task(run())

            loop.add_signal_handler(signal.SIGHUP, on_sighup)
            installed = True
        try:
            yield
        finally:
            if installed:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    app = FastAPI(title="trial-screening", version=__version__, lifespan=lifespan,
                  description="Clinical-trial eligibility screening with explained, three-valued verdicts.")
    app.add_middleware(RequestContext)
    app.state.rules = state

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return _error_response(request, exc.status, exc.body)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        error = exc.errors()[0]
        loc = tuple(error.get("loc", ()))
        field = _field_path(loc[1:] if loc and loc[0] in ("query", "path", "body", "header") else loc)
        return _error_response(request, 422, {"error": error.get("msg", "invalid"), "field": field or None})

    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error_response(request, exc.status_code, {"error": str(exc.detail)})

    @app.get("/health", response_model=Health)
    async def health() -> Health:
        snapshot = state.current
        return _health(snapshot.rules, snapshot.generation)

    @app.get("/trials", response_model=list[TrialInfo])
    async def trials() -> list[TrialInfo]:
        return [_trial_info(state.current.rules, trial_id) for trial_id in state.current.rules.trials]

    @app.get("/trials/{trial_id}", response_model=TrialInfo, responses=_errors(404, 422))
    async def trial(trial_id: str) -> TrialInfo:
        rules = state.current.rules
        if trial_id not in rules.trials:
            raise ServiceError(404, f"unknown trial: {trial_id}", trial_ids=(trial_id,))
        return _trial_info(rules, trial_id)

    @app.post("/screen", response_model=ScreenResponse, responses=_errors(400, 404, 413, 422),
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _INPUT}}}})
    async def screen_one(request: Request, as_of: AsOf = None, trial: Trials = None, engine: Engine = None) -> Response:
        """Screen one patient: a native profile, a FHIR R4 Bundle, or ``{"patient": ..., "as_of", "trial", "engine"}``."""
        options = _Options(as_of, trial, engine)
        rules = state.current.rules
        data = _decode_json(await _read_body(request, max_body_bytes))
        return JSONResponse(_screen(data, options, rules))

    @app.post("/screen/batch", response_model=list[ScreenResponse | BatchError], responses=_errors(400, 404, 413, 422),
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"type": "array", "items": _INPUT, "maxItems": max_batch_items}},
                  "application/x-ndjson": {"schema": {"type": "string", "description": "one patient per line"}}}}})
    async def screen_batch(request: Request, as_of: AsOf = None, trial: Trials = None, engine: Engine = None) -> Response:
        """Screen up to ``max_batch_items`` patients (JSON array or NDJSON); one item per input, in
        order: a result, or ``{index, error, field}`` for an input that cannot be screened."""
        options = _Options(as_of, trial, engine)
        rules = state.current.rules
        unknown = set(options.trial or ()) - set(rules.trials)
        if unknown:
            raise ServiceError(404, f"unknown trial(s): {', '.join(sorted(unknown))}", trial_ids=tuple(sorted(unknown)))
        items = _batch_items(await _read_body(request, max_body_bytes), request.headers.get("content-type", ""), max_batch_items)
        out: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            try:
                if isinstance(item, ServiceError):
                    raise item
                out.append(_screen(item, options, rules))
            except ServiceError as exc:
                out.append(BatchError(index=index, error=exc.body["error"], field=exc.body.get("field")).model_dump(mode="json"))
            await anyio.sleep(0)
        if request.headers.get("content-type", "").split(";")[0].strip().lower() in NDJSON_TYPES:
            return Response("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in out), media_type="application/x-ndjson")
        return JSONResponse(out)

    @app.post("/admin/reload", response_model=Health, responses=_errors(422))
    async def reload() -> Health:
        """Reload the rules from disk and swap them in atomically; broken rules give 422 naming the
        file, and the old rules stay in use."""
        try:
            return await anyio.to_thread.run_sync(do_reload)
        except RulesError as exc:
            raise ServiceError(422, str(exc), file=exc.file, criterion=exc.criterion) from None

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in _patient_schemas().items():
                if name in components and components[name] != definition:
                    raise RuntimeError(f"OpenAPI component {name!r} defined twice")
                components[name] = definition
            components["ScreenRequest"] = {**ScreenRequest.model_json_schema(), "properties": {
                **ScreenRequest.model_json_schema()["properties"],
                "patient": {"anyOf": _INPUT["anyOf"][:2], "description": "A native patient profile or a FHIR R4 Bundle"}}}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _health(rules: RuleSet, generation: int) -> Health:
    return Health(engine_version=__version__, trials=len(rules.trials),
                  rules_hashes={t: loaded.rules_hash for t, loaded in rules.trials.items()}, rules_generation=generation)


def _trial_info(rules: RuleSet, trial_id: str) -> TrialInfo:
    loaded = rules.trials[trial_id]
    t = loaded.trial
    return TrialInfo(trial_id=t.id, title=t.title, phase=t.phase, sites=t.sites, version=t.version, rules_hash=loaded.rules_hash,
                     basis=t.source.basis.value, source_url=t.source.url, caveats=t.caveats,
                     criteria=tuple({"id": c.id, "kind": c.kind, "text": c.text, "reading": c.reading} for c in t.criteria))
