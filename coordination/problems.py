"""One map from an exception to the answer it gets: the status, the field at fault and the
words. The API renders it as a JSON problem (``app``), the pages as an error page
(``web.routes``), so that the two never disagree on what an error means."""

from __future__ import annotations

import dataclasses
import enum
import logging
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litestar import Request
from litestar.exceptions import HTTPException, ValidationException
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from calendars.workdays import CalendarInputError
from coordination.errors import Forbidden, Gone, InputError, NotFound

log = logging.getLogger("samhandling")

#: How long a client should wait before it asks again while the database is away.
RETRY_AFTER: Mapping[str, str] = {"Retry-After": "10"}


class Kind(enum.StrEnum):
    """What went wrong, in the terms a page picks its words by."""

    INPUT = "input"
    INVALID = "invalid"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    GONE = "gone"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"
    OTHER = "other"


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    """The answer to an exception. ``detail`` is the API's English text: the service's own
    message for a refusal, a fixed sentence for everything else (never a database's words)."""

    kind: Kind
    status: int
    detail: str
    field: str | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)


#: The exceptions both the API and the pages answer through :func:`problem_of`.
HANDLED: tuple[type[Exception], ...] = (
    InputError, CalendarInputError, ValidationException, NotFound, Forbidden, Gone, IntegrityError, DBAPIError,
    OSError, TimeoutError, HTTPException, Exception,
)

_CONFLICT = "the change conflicts with data that already exists; reload and try again"
_UNAVAILABLE = "the database cannot be reached right now; try again shortly"


def problem_of(exc: Exception) -> Problem:
    """The one table: the most specific kind first (an ``IntegrityError`` is a ``DBAPIError``,
    a ``ValidationException`` an ``HTTPException``, a ``TimeoutError`` an ``OSError``)."""
    match exc:
        case InputError():
            return Problem(Kind.INPUT, 400, exc.message, exc.field)
        case CalendarInputError():
            return Problem(Kind.INPUT, 400, exc.detail, exc.field)
        case ValidationException():
            return _invalid(exc)
        case NotFound():
            return Problem(Kind.NOT_FOUND, 404, str(exc))
        case Forbidden():
            return Problem(Kind.FORBIDDEN, 403, str(exc))
        case Gone():
            return Problem(Kind.GONE, 410, str(exc))
        case IntegrityError():
            return Problem(Kind.CONFLICT, 409, _CONFLICT)
        case DBAPIError() if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
            return Problem(Kind.UNAVAILABLE, 503, _UNAVAILABLE, headers=RETRY_AFTER)
        case DBAPIError():
            return Problem(Kind.INTERNAL, 500, "internal error")
        case OSError():  # TimeoutError too
            return Problem(Kind.UNAVAILABLE, 503, _UNAVAILABLE, headers=RETRY_AFTER)
        case HTTPException():
            kind = Kind.NOT_FOUND if exc.status_code == 404 else Kind.OTHER
            return Problem(kind, exc.status_code, exc.detail, headers=dict(exc.headers or {}))
    return Problem(Kind.INTERNAL, 500, "internal error")


def _invalid(exc: ValidationException) -> Problem:
    """Litestar's own refusal of a body, query or path, with the first field it names."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    parts = []
    first = None
    for problem in problems:
        if isinstance(problem, dict):
            key = problem.get("key") or ""
            first = first or (key or None)
            parts.append(f"{key}: {problem.get('message')}" if key else str(problem.get("message")))
    return Problem(Kind.INVALID, 400, f"invalid request: {'; '.join(parts) or exc.detail}", first)


def note(request: Request[Any, Any, Any], exc: Exception, problem: Problem) -> None:
    """Log what an operator needs to know of a problem, and nothing a person typed."""
    if problem.kind is Kind.CONFLICT:
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        log.info("integrity conflict: %s", type(orig).__name__)
    elif problem.kind is Kind.UNAVAILABLE:
        log.warning("database unavailable: %s", type(exc).__name__)
    elif problem.kind is Kind.INTERNAL:
        _log_internal(request, exc, "database error" if isinstance(exc, DBAPIError) else "internal error")


_PACKAGE = str(Path(__file__).resolve().parent)


def _log_internal(request: Request[Any, Any, Any], exc: BaseException, what: str) -> None:
    """An unexpected error, logged with what an operator needs and nothing a person typed: the
    route and its ids, the error's kind (and SQLSTATE), and the innermost line of our own code.
    Never the error's message or traceback: a database's message may hold the row it refused
    ("Failing row contains ...", "Key (...)=(...)"), and an exception's text anything at all."""
    ids = " ".join(f"{k}={v}" for k, v in request.path_params.items() if isinstance(v, int))
    cause: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    code = getattr(cause, "sqlstate", None) or getattr(cause, "sqlite_errorname", None)
    while cause.__cause__ is not None:  # the driver's own error (asyncpg's) names the kind best
        cause = cause.__cause__
    ours = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(_PACKAGE)]
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno} in {ours[-1].name}" if ours else "?"
    log.error("%s: %s %s%s: %s%s at %s", what, request.method, request.scope.get("path_template", "?"),
              f" ({ids})" if ids else "", type(cause).__name__, f" ({code})" if code else "", where)
