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
    """ninja's JSON parser; bodies far over any limit are refused before parsing."""

    def parse_body(self, request):
        limit = settings.MAX_SOURCE_BYTES + 64 * 1024
        if len(request.body) > limit:
            raise ApiError(413, "payload_too_large", f"The body is larger than {limit} bytes.")
        return super().parse_body(request)

    def parse_querydict(self, data, list_fields, request):
        """A parameter the description gives one value may not come twice (ninja would keep
        the last and answer as if the first had not been sent)."""
        for key in data:
            if key not in list_fields and len(data.getlist(key)) > 1:
                raise ApiError(
                    400, "invalid_request", f"Invalid request: `{key}` may be given only once."
                )
        return super().parse_querydict(data, list_fields, request)


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


def refuse_unknown_query(operation) -> None:
    """In an operation that takes query parameters, one it does not describe is refused (400,
    naming it), not ignored: `?fucntion=x` would otherwise answer as if no filter had been
    asked for."""
    queries = [m for m in operation.models if getattr(m, "__ninja_param_source__", None) == "query"]
    if not queries:
        return  # (nothing to misspell; its description has no 400 to answer with)
    known: set[str] = set()
    for model in queries:
        known |= set(getattr(model, "__ninja_flatten_map__", None) or model.model_fields)
    values = operation._get_values

    def checked(request, path_params, temporal_response):
        unknown = next((name for name in request.GET if name not in known), None)
        if unknown is not None:
            raise ApiError(
                400, "invalid_request",
                f"Invalid request: `{unknown[:64]}` is not a parameter of this operation.",
            )  # fmt: skip
        return values(request, path_params, temporal_response)

    operation._get_values = checked


for _bound in api._get_bound_routers():  # the operations ninja serves (its routers' copies)
    for _path_view in _bound.path_operations.values():
        for _operation in _path_view.operations:
            refuse_unknown_query(_operation)
