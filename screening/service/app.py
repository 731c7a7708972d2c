"""The FastAPI application: ``create_app(config)`` builds one, with its own loaded rules.

    screening serve --rules rules --port 8000 [--workers 2]    # the CLI runs it under uvicorn
    uvicorn --factory screening.service.app:create_app         # or uvicorn directly (configured
                                                               # by environment: service/config.py)

Endpoints: ``GET /health``, ``GET /trials``, ``GET /trials/{trial_id}``, ``POST /screen``,
``POST /screen/batch``, ``POST /admin/reload`` (behind a bearer token when one is configured).
Every error is an :class:`ErrorBody` JSON object: 422 for input that cannot be used (with the
field path), 404 for an unknown trial, 413 for a body over ``max_body_bytes`` (or a batch over
``max_batch_items``), 401/403 for a missing or wrong admin token, never a 500 for what a client
sends.
The screening itself runs on the event loop (a patient takes about 2 ms); a batch yields to the
loop between patients so health checks and other requests are not starved.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from .. import __version__, screen
from ..errors import PatientDataError, RulesError, UnknownTrialError
from ..evaluators.explain import trial_caveats
from ..jsontext import JsonProblem, decode_json
from ..patient.io import _field_path, parse_patient
from ..patient.model import PatientProfile
from ..rules.loader import RuleSet
from .config import ServiceConfig
from .middleware import RequestContext
from ..clinical.units import load_registry
from .models import DATE_PATTERN, BatchError, ErrorBody, Health, ScreenRequest, ScreenResponse, ServiceEngine, TrialInfo
from .reload import refusal, sighup_reloads, signal_supervisor
from .state import RulesState

EARLIEST, LATEST = dt.date(1900, 1, 1), dt.date(2999, 12, 31)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-lines")


class ServiceError(Exception):
    """An error answered as ``status`` with an :class:`ErrorBody`."""

    def __init__(self, status: int, error: str, *, headers: dict[str, str] | None = None, **where: Any):
        super().__init__(error)
        self.status = status
        self.headers = headers
        self.body = {"error": error, **{k: v for k, v in where.items() if v is not None}}


def _error_response(request: Request, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({**body, "request_id": request.scope.get("state", {}).get("request_id")}, status_code=status,
                        headers=headers)


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
        return decode_json(raw)
    except JsonProblem as exc:
        raise ServiceError(422, str(exc)) from None


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


def _screen(data: Any, options: _Options, rules: RuleSet) -> bytes:
    """The JSON of one :class:`ScreenResponse` (serialized by pydantic directly: a result is ~10 kB)."""
    profile, warnings, options = _to_profile(data, options)
    try:
        result = screen(profile, rules, as_of=options.as_of or dt.date.today(), trials=options.trial,
                        engine=options.engine or "explain")
    except UnknownTrialError as exc:
        raise ServiceError(404, str(exc), trial_ids=tuple(exc.trial_ids)) from None
    except PatientDataError as exc:  # e.g. a unit that parses but does not convert for its analyte
        raise _patient_error(exc) from None
    if warnings is None:
        return result.model_dump_json().encode()
    body = {**result.model_dump(mode="json"), "warnings": [w.model_dump(mode="json") for w in warnings]}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _batch_items(raw: bytes, content_type: str, max_items: int) -> list[Any]:
    """Decoded batch inputs; an NDJSON line that is not JSON becomes a :class:`ServiceError` item."""
    if content_type.split(";")[0].strip().lower() in NDJSON_TYPES:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ServiceError(422, "NDJSON body is not UTF-8 text") from None
        items: list[Any] = []
        for line in text.split("\n"):  # not splitlines(): U+2028, U+0085... may stand in a JSON string
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
Engine = Annotated[ServiceEngine | None, Query(
    description="explain (reference, default), durable (durable_rules Rete) or vectorized (pandas); identical results")]


def create_app(config: ServiceConfig | None = None) -> FastAPI:
    """A new application serving ``config`` (default: :meth:`ServiceConfig.from_env`, which is how
    uvicorn's worker processes get it), its rules loaded now: a :class:`RulesError` here means the
    service does not start. Reloading: :mod:`screening.service.reload`.
    """
    config = config if config is not None else ServiceConfig.from_env()
    state = RulesState(config.rules_dir)

    def do_reload() -> Health:
        snapshot = state.reload()
        return _health(snapshot.rules, snapshot.generation)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        load_registry()  # before serving: the first SI unit would otherwise stall this worker's loop
        if not config.reload_on_sighup:
            yield
            return
        async with sighup_reloads(do_reload, lambda: f"generation {state.current.generation}"):
            yield

    app = FastAPI(title="trial-screening", version=__version__, lifespan=lifespan,
                  description="Clinical-trial eligibility screening with explained, three-valued verdicts.")
    app.add_middleware(RequestContext)
    app.state.rules = state

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return _error_response(request, exc.status, exc.body, exc.headers)

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
        data = _decode_json(await _read_body(request, config.max_body_bytes))
        return Response(_screen(data, options, rules), media_type="application/json")

    @app.post("/screen/batch", response_model=list[ScreenResponse | BatchError], responses=_errors(400, 404, 413, 422),
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"type": "array", "items": _INPUT, "maxItems": config.max_batch_items}},
                  "application/x-ndjson": {"schema": {"type": "string", "description": "one patient per line"}}}}})
    async def screen_batch(request: Request, as_of: AsOf = None, trial: Trials = None, engine: Engine = None) -> Response:
        """Screen up to ``max_batch_items`` patients (JSON array or NDJSON); one item per input, in
        order: a result, or ``{index, error, field}`` for an input that cannot be screened."""
        options = _Options(as_of, trial, engine)
        rules = state.current.rules
        unknown = set(options.trial or ()) - set(rules.trials)
        if unknown:
            raise ServiceError(404, f"unknown trial(s): {', '.join(sorted(unknown))}", trial_ids=tuple(sorted(unknown)))
        items = _batch_items(await _read_body(request, config.max_body_bytes), request.headers.get("content-type", ""),
                             config.max_batch_items)
        out: list[bytes] = []
        for index, item in enumerate(items):
            try:
                if isinstance(item, ServiceError):
                    raise item
                out.append(_screen(item, options, rules))
            except ServiceError as exc:
                out.append(BatchError(index=index, error=exc.body["error"], field=exc.body.get("field"),
                                      patient_id=exc.body.get("patient_id")).model_dump_json().encode())
            await anyio.sleep(0)
        if request.headers.get("content-type", "").split(";")[0].strip().lower() in NDJSON_TYPES:
            return Response(b"".join(o + b"\n" for o in out), media_type="application/x-ndjson")
        return Response(b"[" + b",".join(out) + b"]", media_type="application/json")

    @app.post("/admin/reload", response_model=Health, responses=_errors(401, 403, 422),
              openapi_extra={"security": [{}, {"adminToken": []}]})
    async def reload(request: Request) -> Health:
        """Reload the rules from disk and swap them in atomically; broken rules give 422 naming the
        file, and the old rules stay in use. With ``$SCREENING_ADMIN_TOKEN`` set, needs
        ``Authorization: Bearer <token>`` (401 without, 403 wrong). With several workers, every
        worker is then replaced with one that loaded the new rules (a few seconds)."""
        refused = refusal(request.headers.get("authorization"), config.admin_token)
        if refused is not None:
            status, message = refused
            raise ServiceError(status, message, headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)
        try:
            health = await anyio.to_thread.run_sync(do_reload)
        except RulesError as exc:
            raise ServiceError(422, str(exc), file=exc.file, criterion=exc.criterion) from None
        signal_supervisor(config.supervisor_pid)
        return health

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = {"adminToken": {
                "type": "http", "scheme": "bearer", "description": "$SCREENING_ADMIN_TOKEN, when the service sets one"}}
            components = schema["components"].setdefault("schemas", {})
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
                     basis=t.source.basis.value, source_url=t.source.url, caveats=trial_caveats(t),
                     criteria=tuple({"id": c.id, "kind": c.kind, "text": c.text, "reading": c.reading} for c in t.criteria))
