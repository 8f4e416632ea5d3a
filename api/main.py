"""The JSON API (django-ninja): authentication, error answers, and the operations of each
module mounted. The OpenAPI description is generated from the same schemas that validate
requests and answers, and served at /api/openapi.json."""

from django.conf import settings
from django.middleware.csrf import CsrfViewMiddleware
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser as NinjaParser
from ninja.security import APIKeyCookie, HttpBearer

from accounts.factors import asking, why_needed
from sso.rules import asking as sso_asking
from sso.rules import missing as sso_missing

from . import (
    audit,
    cli,
    domains,
    drains,
    events,
    invocations,
    kv,
    logs,
    members,
    plain_settings,
    releases,
    runs,
    secrets,
    tenant_drains,
    usage,
    workers,
)
from .errors import ApiError, error_response


class KeyAuth(HttpBearer):
    """An API key (`Authorization: Bearer wk_…`), checked once per request by the
    principal middleware."""

    def authenticate(self, request, token):
        principal = request.principal
        return principal if principal.key is not None else None


class SessionAuth(APIKeyCookie):
    """A signed-in portal session; writes must carry the CSRF token, as the pages do."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self):
        super().__init__(csrf=False)  # checked below, with our own error answer

    def authenticate(self, request, key):
        principal = request.principal
        if principal.user is None or principal.key is not None:
            return None
        who = why_needed(principal)
        if who:  # (the pages send such an account to set one up; the API says why not)
            raise ApiError(403, "second_factor_required", f"{asking(who)} Or use an API key.")
        left = sso_missing(principal, request.session)
        if left:
            raise ApiError(403, "single_sign_on_required",
                           f"{sso_asking(left[0])} Or use an API key.")  # fmt: skip
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            rejected = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
            if rejected is not None:
                raise ApiError(403, "csrf_failed", "CSRF check failed; use an API key.")
        return principal


api = NinjaAPI(
    title="Functions API",
    version="1",
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url=None,
    auth=[KeyAuth(), SessionAuth()],
)


@api.exception_handler(ApiError)
def api_error(request, exc: ApiError):
    return error_response(exc.status, exc.code, exc.message, exc.headers)


@api.exception_handler(AuthenticationError)
def unauthenticated(request, exc):
    return error_response(
        401,
        "unauthenticated",
        "Send `Authorization: Bearer <API key>` with an active key, or sign in.",
    )


@api.exception_handler(HttpError)
def http_error(request, exc: HttpError):
    if isinstance(exc.__cause__, ApiError):
        return api_error(request, exc.__cause__)
    if exc.status_code == 400 and exc.__cause__ is not None:  # the body did not parse
        return error_response(400, "invalid_json", f"The body is not valid JSON: {exc.__cause__}")
    return error_response(exc.status_code, "error", str(exc))


@api.exception_handler(ValidationError)
def invalid(request, exc: ValidationError):
    """Pydantic's findings, as one sentence per field."""
    problems = []
    code = "invalid_request"
    for problem in exc.errors:
        where = [str(part) for part in problem.get("loc", ()) if part not in ("body", "payload")]
        if problem.get("type") in ("model_type", "dict_type", "model_attributes_type"):
            return error_response(400, "invalid_json", "The body must be a JSON object.")
        if where[:1] == ["name"]:
            code = "invalid_name"
        field = ".".join(where) or "body"
        problems.append(f"{field}: {problem.get('msg', 'invalid')}")
    return error_response(400, code, "Invalid request: " + "; ".join(problems) + ".")


class Parser(NinjaParser):
    """ninja's JSON parser; bodies far over any limit are refused before parsing. (Query
    strings: `strict_query` below.)"""

    def parse_body(self, request):
        limit = settings.MAX_SOURCE_BYTES + 64 * 1024
        if len(request.body) > limit:
            raise ApiError(413, "payload_too_large", f"The body is larger than {limit} bytes.")
        return super().parse_body(request)


api.parser = Parser()
api.add_router("", workers.router)
api.add_router("", logs.router)
api.add_router("", drains.router)
api.add_router("", releases.router)
api.add_router("", runs.router)
api.add_router("", invocations.router)
api.add_router("", usage.router)
api.add_router("", cli.router)
api.add_router("", secrets.router)
api.add_router("", plain_settings.router)
api.add_router("", audit.router)
api.add_router("", tenant_drains.router)
api.add_router("", events.router)
api.add_router("", domains.router)
api.add_router("", kv.router)
api.add_router("", members.router)


def strict_query(operation) -> None:
    """An operation that takes query parameters refuses (400, naming it) a parameter it does
    not describe, and one given twice that the description gives one value: ninja would
    ignore the first (`?fucntion=x` answering as if no filter had been asked for) and keep
    the last of the second. One check over all of the operation's query models, before ninja
    reads them."""
    queries = [m for m in operation.models if getattr(m, "__ninja_param_source__", None) == "query"]
    if not queries:
        return  # (nothing to misspell; its description has no 400 to answer with)
    known: set[str] = set()
    listed: set[str] = set()
    for model in queries:
        known |= set(getattr(model, "__ninja_flatten_map__", None) or model.model_fields)
        listed |= set(getattr(model, "__ninja_collection_fields__", None) or ())
    values = operation._get_values

    def checked(request, path_params, temporal_response):
        for name in request.GET:
            if name not in known:
                raise ApiError(
                    400, "invalid_request",
                    f"Invalid request: `{name[:64]}` is not a parameter of this operation.",
                )  # fmt: skip
            if name not in listed and len(request.GET.getlist(name)) > 1:
                raise ApiError(
                    400, "invalid_request", f"Invalid request: `{name}` may be given only once."
                )
        return values(request, path_params, temporal_response)

    operation._get_values = checked


for _bound in api._get_bound_routers():  # the operations ninja serves (its routers' copies)
    for _path_view in _bound.path_operations.values():
        for _operation in _path_view.operations:
            strict_query(_operation)
