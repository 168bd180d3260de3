"""The OpenAPI document tells every answer the service can give, not only the happy one.

Litestar documents each handler's success and its validation error. The other answers come
from the composition root, which maps errors the same way for every route (401 without a
valid token, 403 for the wrong role, 404 for what you may not see, 409 on a conflict, 413
for a body over the limit, 503 while the database is away) and from the capability lookups
(410 revoked, 429 after repeated guessing). They are added here, in one place, so that a
client — or schemathesis — can rely on the document. Request bodies that refuse unknown
fields say so (``additionalProperties: false``).
"""

from __future__ import annotations

from typing import Any, cast

import msgspec
from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.openapi.spec import Components, OpenAPI, OpenAPIType, Operation, Reference, RequestBody, Schema
from litestar.openapi.spec import OpenAPIMediaType as MediaType
from litestar.openapi.spec import OpenAPIResponse as Response
from litestar.routes import HTTPRoute

REF = "#/components/schemas/{name}"

ERROR = Schema(
    type=OpenAPIType.OBJECT,
    required=["status_code", "detail"],
    properties={
        "status_code": Schema(type=OpenAPIType.INTEGER),
        "detail": Schema(type=OpenAPIType.STRING),
        "field": Schema(one_of=[Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.NULL)]),
    },
    description="What went wrong; ``field`` names the part of the request at fault.",
)
TEXT = {"text/plain": MediaType(schema=Schema(type=OpenAPIType.STRING))}
HTML = {"text/html": MediaType(schema=Schema(type=OpenAPIType.STRING))}
JSON = {"application/json": MediaType(schema=Reference(ref="#/components/schemas/Error"))}
HEALTH = {"application/json": MediaType(schema=Schema(
    type=OpenAPIType.OBJECT, additional_properties=Schema(type=OpenAPIType.STRING)))}
WRITES = ("post", "put", "patch", "delete")
#: Capability lookups (no sign-in): their answers are plain text, or the page itself.
CAPABILITIES = ("/feeds/{filename}", "/answer/{token}")
#: Documents answered as PDF unless JSON is asked for (``api.records``).
PDF_OR_JSON = ("/cases/{case_id}/record", "/cases/{case_id}/access-report")
PDF = {"application/pdf": MediaType(schema=Schema(type=OpenAPIType.STRING, content_media_type="application/pdf"))}

DESCRIPTIONS = {
    400: "The request breaks a rule", 401: "Sign in with a valid API token",
    403: "Your role may not do this", 404: "Not found, or not yours to see",
    409: "Conflicts with data that exists", 410: "Revoked or no longer valid",
    413: "The request body is larger than SAMHANDLING_MAX_BODY_BYTES",
    429: "Too many unknown addresses from this client; see Retry-After",
    503: "The database cannot be reached right now; see Retry-After",
}


def _statuses(path: str, method: str, operation: Operation) -> list[int]:
    if path.startswith("/health"):
        return [503]
    if path in CAPABILITIES:
        statuses = [404, 410, 429, 503]
        return [*statuses, 400, 413] if method == "post" else statuses
    statuses = [400, 401, 403, 503]
    if operation.parameters and any(getattr(p, "param_in", None) == "path" for p in operation.parameters):
        statuses.append(404)
    if method in WRITES:
        statuses += [404, 409]
    if operation.request_body is not None:
        statuses.append(413)
    return statuses


def _request_bodies(app: Litestar, document: OpenAPI, components: Components) -> None:
    """Request bodies as strict as msgspec checks them: Litestar's generator loses the bounds of
    list items (``list[Id]``) and never says that a body refuses unknown fields, so a client
    sending what the document allowed got a 400. The constraints are taken from msgspec's own
    schema of each body type (its formats are poorer, so Litestar's stay the base)."""
    theirs: dict[str, Any] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            data = handler.parsed_fn_signature.parameters.get("data")
            item = (document.paths or {}).get(route.path_format)
            if data is None or item is None or not handler.resolve_include_in_schema():
                continue
            (body,), defined = msgspec.json.schema_components([data.annotation], ref_template=REF)
            theirs.update(defined)
            for method in handler.http_methods:
                operation: Operation | None = getattr(item, method.lower(), None)
                content = operation.request_body.content if operation and isinstance(
                    operation.request_body, RequestBody) else {}
                media = content.get("application/json")
                if media is not None and isinstance(media.schema, Schema):
                    media.schema = _tightened(media.schema.to_schema(), body)
    ours = components.schemas or {}
    for name, schema in theirs.items():
        if isinstance(ours.get(name), Schema):
            ours[name] = _tightened(ours[name].to_schema(), schema)


_BOUNDS = ("minimum", "maximum", "minItems", "maxItems", "minLength", "maxLength", "pattern")


def _tighten(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    out = {**ours, **{key: theirs[key] for key in _BOUNDS if key in theirs and key not in ours}}
    if isinstance(ours.get("items"), dict) and isinstance(theirs.get("items"), dict):
        out["items"] = _tighten(ours["items"], theirs["items"])
    if isinstance(ours.get("properties"), dict) and isinstance(theirs.get("properties"), dict):
        out["properties"] = {key: _tighten(value, theirs["properties"].get(key, {}))
                             for key, value in ours["properties"].items()}
        out["additionalProperties"] = False
    alternatives = theirs.get("anyOf") or theirs.get("oneOf") or []
    for key in ("anyOf", "oneOf"):
        if isinstance(ours.get(key), list):
            out[key] = [_tighten(option, next((t for t in alternatives if t.get("type") == option.get("type")), {}))
                        for option in ours[key]]
    return out


def _tightened(ours: dict[str, Any], theirs: dict[str, Any]) -> Schema:
    """Litestar writes plain dicts out as they are."""
    return cast(Schema, _tighten(ours, theirs))


class _DocumentedOpenAPIPlugin(OpenAPIPlugin):
    """Litestar's OpenAPI plugin, completing the document when it is first built: building it
    takes a while, and most apps (tests above all) never serve it."""

    __slots__ = ()

    def _build_openapi(self) -> OpenAPI:
        document = super()._build_openapi()
        _document(self.app, document)
        return document


def document_answers(app: Litestar) -> None:
    """Have ``app``'s OpenAPI document tell the answers every route can give."""
    plugin = app.plugins.get(OpenAPIPlugin)
    plugin.__class__ = _DocumentedOpenAPIPlugin


def _document(app: Litestar, document: OpenAPI) -> None:
    components = document.components if isinstance(document.components, Components) else Components()
    components.schemas = {**(components.schemas or {}), "Error": ERROR}
    document.components = components
    _request_bodies(app, document, components)
    for path, item in (document.paths or {}).items():
        for method in ("get", "post", "put", "patch", "delete"):
            operation: Operation | None = getattr(item, method, None)
            if operation is None:
                continue
            if path in CAPABILITIES:
                operation.security = [{}]  # the token in the address is the capability
            responses = operation.responses = dict(operation.responses or {})
            if path == "/answer/{token}" and isinstance(responses.get("400"), Response):
                # Litestar documents its own JSON validation error; the page answers a refused
                # answer with an HTML page too.
                refused = cast(Response, responses["400"])
                refused.content = {**(refused.content or {}), **HTML}
            if path in PDF_OR_JSON and isinstance(responses.get("200"), Response):
                done = cast(Response, responses["200"])
                done.content = {**PDF, **(done.content or {})}
            for status in _statuses(path, method, operation):
                if str(status) not in responses:
                    responses[str(status)] = Response(description=DESCRIPTIONS[status],
                                                      content=_content(path, status))


def _content(path: str, status: int) -> dict[str, MediaType]:
    if path.startswith("/health"):
        return HEALTH
    if path == "/feeds/{filename}" or (path in CAPABILITIES and status == 429):
        return TEXT
    if path == "/answer/{token}":
        return HTML  # the answer page explains its errors as a page too
    return JSON
