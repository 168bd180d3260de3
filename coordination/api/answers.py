"""The page behind the accept/decline link, in the participant's language (no sign-in:
the link is the capability, and as the form posts back to that same unguessable address it
needs no other CSRF token). Works without JavaScript; one form, three buttons."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Template

from coordination.api.deps import Ctx
from coordination.domain import Language
from coordination.errors import Gone, InputError, NotFound
from coordination.scheduling import answers
from coordination.scheduling.enums import MeetingStatus, ParticipantAnswer
from notifications.messages import format_when

_TEXTS = {
    Language.NB: {"title": "Svar på møteinnkalling", "when": "Tid", "where": "Sted", "yes": "Jeg kommer",
                  "no": "Jeg kan ikke komme", "maybe": "Kanskje", "your": "Ditt svar",
                  ParticipantAnswer.ACCEPTED: "Du kommer", ParticipantAnswer.DECLINED: "Du kan ikke komme",
                  ParticipantAnswer.TENTATIVE: "Kanskje", ParticipantAnswer.NEEDS_ACTION: "Ikke svart ennå",
                  "cancelled": "Møtet er avlyst."},
    Language.NN: {"title": "Svar på møteinnkalling", "when": "Tid", "where": "Stad", "yes": "Eg kjem",
                  "no": "Eg kan ikkje kome", "maybe": "Kanskje", "your": "Svaret ditt",
                  ParticipantAnswer.ACCEPTED: "Du kjem", ParticipantAnswer.DECLINED: "Du kan ikkje kome",
                  ParticipantAnswer.TENTATIVE: "Kanskje", ParticipantAnswer.NEEDS_ACTION: "Ikkje svart enno",
                  "cancelled": "Møtet er avlyst."},
    Language.EN: {"title": "Reply to a meeting invitation", "when": "Time", "where": "Place",
                  "yes": "I will come", "no": "I cannot come", "maybe": "Maybe", "your": "Your answer",
                  ParticipantAnswer.ACCEPTED: "You will come", ParticipantAnswer.DECLINED: "You cannot come",
                  ParticipantAnswer.TENTATIVE: "Maybe", ParticipantAnswer.NEEDS_ACTION: "Not answered yet",
                  "cancelled": "The meeting is cancelled."},
}


def _page(view: answers.AnswerView, token: str) -> Template:
    """The page itself is ``templates/answer.html``: time and place, nothing more."""
    return Template(
        template_name="answer.html",
        context={
            "lang": view.language.value, "t": _TEXTS[view.language], "token": token,
            "when": format_when(view.start, view.end, view.language), "place": view.place,
            "cancelled": view.status is MeetingStatus.CANCELLED, "answer": view.answer,
        },
        headers=_HEADERS,
    )


_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'self'; script-src 'none'; form-action 'self'; "
                                       "base-uri 'none'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff"}

#: The link is all we know of the reader, so a broken link is explained in bokmål and English.
_PROBLEMS = {
    404: ("Lenken virker ikke", "Link not valid",
          "Vi fant ikke denne svarlenken. Kontroller at hele lenken fra e-posten er med.",
          "We could not find this answer link. Check that the whole link from the e-mail is there."),
    410: ("Lenken er ikke lenger gyldig", "Link no longer valid",
          "Bruk lenken i den nyeste e-posten om møtet, eller ta kontakt med den som sendte den.",
          "Use the link in the newest e-mail about the meeting, or contact whoever sent it."),
    400: ("Svaret ble ikke registrert", "The answer was not recorded",
          "Møtet tar ikke imot svar nå, eller svaret var ugyldig.",
          "The meeting takes no answers now, or the answer was not valid."),
}


def _problem(status: int) -> Template:
    title_nb, title_en, text_nb, text_en = _PROBLEMS[status]
    return Template(template_name="answer_problem.html", status_code=status, headers=_HEADERS,
                    context={"title_nb": title_nb, "title_en": title_en, "text_nb": text_nb, "text_en": text_en})


def _not_found(_: Request[Any, Any, State], __: NotFound) -> Template:
    return _problem(404)


def _gone(_: Request[Any, Any, State], __: Gone) -> Template:
    return _problem(410)


def _refused(_: Request[Any, Any, State], __: InputError) -> Template:
    return _problem(400)


class AnswerController(Controller):
    """A family member follows this link from an e-mail: errors are pages, not JSON."""

    path = "/answer"
    tags = ["answers"]
    exception_handlers = {NotFound: _not_found, Gone: _gone, InputError: _refused}

    @get("/{token:str}", include_in_schema=True)
    async def show(self, ctx: Ctx, token: FromPath[str]) -> Template:
        """The page behind the accept/decline link in an invitation: when and where, and the answer
        given so far. No sign-in: the link is the capability."""
        async with ctx.transaction() as session:
            return _page(await answers.view(session, token, ctx.now()), token)

    @post("/{token:str}", status_code=200)
    async def submit(self, ctx: Ctx, token: FromPath[str],
                     data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
                     ) -> Template:
        """Record the answer posted from that page (``answer``: accepted, declined or tentative)
        and show the page again."""
        async with ctx.transaction() as session:
            view = await answers.answer(session, token, data.get("answer", ""), ctx.now())
        return _page(view, token)
