"""The one error map: each exception's status, field and words, which the API's JSON problems
and the pages' error pages both render (``coordination.problems``)."""

from __future__ import annotations

import pytest
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from calendars.workdays import CalendarInputError
from coordination.errors import Forbidden, Gone, InputError, not_found
from coordination.problems import HANDLED, RETRY_AFTER, Kind, problem_of
from coordination.web.routes import PAGE_WORDS


def _db(kind: type[DBAPIError], *, invalidated: bool = False) -> DBAPIError:
    return kind("SELECT 1", {}, Exception("Failing row contains (Mona)"), connection_invalidated=invalidated)


@pytest.mark.parametrize(("error", "kind", "status", "field"), [
    (InputError("start", "must be in the future"), Kind.INPUT, 400, "start"),
    (CalendarInputError("window_end", "must be after window_start"), Kind.INPUT, 400, "window_end"),
    (ValidationException(extra=[{"key": "email", "message": "too long"}]), Kind.INVALID, 400, "email"),
    (not_found("case", 7), Kind.NOT_FOUND, 404, None),
    (NotFoundException(), Kind.NOT_FOUND, 404, None),
    (Forbidden("leaders only"), Kind.FORBIDDEN, 403, None),
    (Gone("revoked"), Kind.GONE, 410, None),
    (_db(IntegrityError), Kind.CONFLICT, 409, None),
    (_db(OperationalError), Kind.UNAVAILABLE, 503, None),
    (_db(DBAPIError, invalidated=True), Kind.UNAVAILABLE, 503, None),
    (_db(DBAPIError), Kind.INTERNAL, 500, None),
    (TimeoutError(), Kind.UNAVAILABLE, 503, None),
    (HTTPException(status_code=405, detail="Method Not Allowed"), Kind.OTHER, 405, None),
    (ValueError("Mona Testesen"), Kind.INTERNAL, 500, None),
])
def test_each_error_has_one_answer(error: Exception, kind: Kind, status: int, field: str | None) -> None:
    problem = problem_of(error)
    assert (problem.kind, problem.status, problem.field) == (kind, status, field)
    assert isinstance(error, HANDLED)
    assert "Mona" not in problem.detail  # a database's or an unexpected error's words never
    if kind is Kind.UNAVAILABLE:
        assert problem.headers == RETRY_AFTER


def test_every_kind_has_words_on_the_pages() -> None:
    assert set(PAGE_WORDS) == set(Kind)
