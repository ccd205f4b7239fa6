"""`capa serve`: the application over HTTP, as a JSON API with its OpenAPI description (SPEC
§11), on FastAPI (pydantic models and OpenAPI from the same signatures) served by uvicorn.

Every operation the server offers (capa.server.operations) is one `POST /v1/<service>/<method>`
whose body names the method's arguments. The server holds the store, its credentials and the
users' encrypted keys; the caller says who acts, and the application checks it exactly as it
does for the command line:

- `Authorization: Bearer <user>:<token>`, a session opened by `POST /v1/identity/login`, held
  to the store's session rules (15 minutes idle, 8 hours at most); or
- `Authorization: Basic <user:password>` (automation), checked like CAPA_USER/CAPA_PASSWORD;
- `Authorization: Bearer capa_…`, a service account's API token (`capa user token issue`);
- `X-Capa-Password: <password>` with a session: the password asked again to sign (R10).

A refusal is the §3 error object with the exit code's HTTP status (1→409, 2→422, 3→404,
4→401 when nobody is identified or 403, 5→409 with `retry: true`, 6→409), and writes nothing.
A write may carry an `Idempotency-Key` (capa.server.idempotency): retried, it never writes twice.
A write that lost a race to another writer (exit 5, nothing written) is run again here, against
the record's new state with every rule checked again, before a 409 is ever sent.
`GET /health` answers without authentication.

`create_app` opens the store named by CAPA_DB, for an ASGI server's workers (`capa serve
--workers N`, or `uvicorn --factory capa.server.api:create_app`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.concurrency import run_in_threadpool

import capa
from capa.app.application import CapaApplication
from capa.domain.errors import CapaError, Conflict, InvalidInput, NotPermitted, exit_code
from capa.domain.user import TOKEN_PREFIX
from capa.server.idempotency import HEADER, Keys, checked_key
from capa.server.operations import FILE_ARGUMENTS, Offered, encode, offered

#: Exit code (SPEC §3) -> HTTP status (SPEC §11).
HTTP_STATUS = {1: 409, 2: 422, 3: 404, 4: 403, 5: 409, 6: 409}
#: Largest request body accepted: an evidence file of 25 MiB, base64-encoded, with its JSON.
MAX_BODY = 36 * 1024 * 1024
#: How often a write that lost a race is run (a writer loses only to another writer's success,
#: so N concurrent writers of one record all succeed within N attempts).
CONFLICT_ATTEMPTS = 8

log = logging.getLogger("capa.server")


class EvidenceUpload(BaseModel):
    """A file kept as evidence, sent as its bytes."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    content_b64: str


def error_body(code: int, message: str, rule: str | None = None,
               retry: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "rule": rule, "message": message}
    if retry:
        body["retry"] = True
    return {"error": body}


def _request_model(op: Offered) -> type[BaseModel]:
    hints = op.hints()
    fields: dict[str, Any] = {}
    for parameter in op.parameters():
        annotation = hints.get(parameter.name, Any)
        if parameter.name in FILE_ARGUMENTS:
            annotation = list[EvidenceUpload]
        elif "Callable" in str(annotation):  # a password given as a value or a prompt
            annotation = str
        default = ... if parameter.default is parameter.empty else parameter.default
        if isinstance(default, tuple):
            default = list(default)
        fields[parameter.name] = (annotation, default)
    name = "".join(part.title() for part in f"{op.service}_{op.method}".split("_"))
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


def create_app() -> FastAPI:
    """The HTTP API of the store CAPA_DB names: the factory each worker process calls."""
    from capa.app.store import open_store

    target = os.environ.get("CAPA_DB", "").strip()
    if not target:
        raise InvalidInput("set CAPA_DB to the store the server serves")
    return build_app(open_store(target))


def build_app(store: CapaApplication) -> FastAPI:
    """The HTTP API of one opened store."""
    api = FastAPI(title="capa", version=capa.__version__,
                  description="Nonconformities and corrective actions with a verifiable audit "
                              "trail. Every operation is POST /v1/<service>/<method>.")

    @api.exception_handler(CapaError)
    async def refused(_request: Request, exc: CapaError) -> JSONResponse:
        code = exit_code(exc)
        status = HTTP_STATUS[code]
        return JSONResponse(error_body(code, str(exc), getattr(exc, "rule", None),
                                       retry=code == 5), status_code=status)

    @api.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else \
            str(first.get("msg", "invalid request"))
        return JSONResponse(error_body(2, message), status_code=422)

    @api.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(error_body(1, f"unexpected error ({type(exc).__name__})"),
                            status_code=500)

    @api.middleware("http")
    async def limit_size(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return JSONResponse(error_body(2, f"the request is larger than {MAX_BODY} bytes"),
                                status_code=413)
        return await call_next(request)

    open_paths = {op.path for op in offered() if set(op.names) <= {"login", "logout"}}

    @api.middleware("http")
    async def authenticate(request: Request, call_next: Any) -> Any:
        # Who acts is settled before the body is even read: a caller the store does not
        # accept learns nothing about the operation's arguments.
        if request.url.path.startswith("/v1/") and request.url.path not in open_paths:
            try:
                request.state.caller = await run_in_threadpool(_caller, store, request)
            except CapaError as exc:
                code = exit_code(exc)
                return JSONResponse(error_body(code, str(exc), getattr(exc, "rule", None)),
                                    status_code=401 if code == 4 else HTTP_STATUS[code])
        return await call_next(request)

    @api.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": capa.__version__}

    keys = Keys(store)
    for op in offered():
        _route(api, store, keys, op)
    return api


def _route(api: FastAPI, store: CapaApplication, keys: Keys, op: Offered) -> None:
    model = _request_model(op)
    open_call = set(op.names) <= {"login", "logout"}

    own = op.server_arguments()
    secret = op.secret_arguments()

    def call(request: Request, body: BaseModel) -> Any:
        arguments = body.model_dump()
        arguments.update({k: os.environ.get(v) if v else None for k, v in own.items()})
        if open_call:
            return _retrying(lambda: encode(
                getattr(getattr(store, op.service), op.method)(**arguments)))
        user, password = request.state.caller
        key = checked_key(request.headers.get(HEADER))

        def perform() -> Any:
            with store.acting_as(user, password), _files(arguments) as given:
                return _retrying(lambda: encode(
                    getattr(getattr(store, op.service), op.method)(**given)))

        if key is None:
            return perform()
        # The request a key stands for, without its passwords: no fast hash of one is kept.
        request_part = {k: v for k, v in body.model_dump().items() if k not in secret}
        return keys.run(user, key, op.path, request_part, perform)

    # FastAPI reads the body's model from the annotations: this operation's own.
    call.__annotations__ = {"request": Request, "body": model, "return": Any}
    call.__name__ = f"{op.service}_{op.method}"
    api.post(op.path, summary=" / ".join(op.names), description=op.function.__doc__ or "",
             tags=[op.service])(call)


def _retrying(run: Any) -> Any:
    """`run()`, again while it loses a race to another writer (nothing written each time)."""
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return run()
        except Conflict:
            if attempt == CONFLICT_ATTEMPTS:
                raise
            time.sleep(random.uniform(0, 0.01 * attempt))  # noqa: S311 - spreads the writers
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def _files(arguments: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The arguments, with uploaded evidence written to a private temporary folder and given
    to the operation as those files (the only paths an operation is ever given)."""
    uploads = {k: v for k, v in arguments.items() if k in FILE_ARGUMENTS and v}
    if not uploads:
        yield arguments
        return
    with tempfile.TemporaryDirectory(prefix="capa-upload-") as folder:
        given = dict(arguments)
        for key, files in uploads.items():
            paths = []
            for index, upload in enumerate(files):
                try:
                    content = base64.b64decode(upload["content_b64"], validate=True)
                except (binascii.Error, ValueError):
                    raise InvalidInput(f"{key}[{index}]: content_b64 is not base64") from None
                name = Path(upload["name"]).name
                if name in ("", ".", ".."):
                    raise InvalidInput(f"{key}[{index}]: the file needs a name")
                target = Path(folder) / str(index) / name
                target.parent.mkdir()
                target.write_bytes(content)
                paths.append(target)
            given[key] = paths
        yield given


def _caller(store: CapaApplication, request: Request) -> tuple[str, str | None]:
    """Who acts, from the request's credentials, checked by the store (lockout included)."""
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    again = request.headers.get("x-capa-password") or None
    if scheme.lower() == "bearer" and credential.startswith(TOKEN_PREFIX) \
            and ":" not in credential:
        # A service account's API token (SPEC §11): it never signs, so no password goes with it.
        return store.service_accounts.resume_token(credential), None
    if scheme.lower() == "bearer" and ":" in credential:
        user, _, token = credential.partition(":")
        return store.identity.resume_session(user, token), again
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(credential, validate=True).decode(
                "utf-8").partition(":")
        except (binascii.Error, ValueError):
            raise NotPermitted("not logged in: the Basic credentials are not base64") from None
        return store.identity.authenticate(user, password), password
    raise NotPermitted("not logged in: send a session token (POST /v1/identity/login), an "
                       "API token or Basic credentials")
