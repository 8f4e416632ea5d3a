"""Every answer under /api/ is JSON, errors included: {"error": {"code", "message"}}."""

from django.http import JsonResponse

from tenancy.access import Denied, check


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def require(request, action, obj, viewing: bool = False) -> None:
    """Through the one access path: 404 for outsiders, 403 with the reason otherwise
    (`viewing`: only whether the role allows it, as a suspended tenant may still look)."""
    try:
        check(request.principal, action, obj, viewing=viewing)
    except Denied as exc:
        status = 404 if exc.code == "not_found" else 403
        raise ApiError(status, exc.code, exc.message) from exc


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"No such {what}.")


# Statuses Django or a proxy may answer on their own under /api/, and the code we give them.
CODES = {404: "not_found", 405: "method_not_allowed", 500: "server_error"}


class JsonErrorsMiddleware:
    """Answers that Django makes before a view runs (a malformed id that matches no URL, a
    method no operation takes, a crash) become JSON errors under /api/; headers such as
    Allow are kept."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
            and not getattr(response, "streaming", False)
        ):
            status = response.status_code
            code = CODES.get(status, "error")
            message = {
                404: "No such resource; ids are UUIDs (see /api/openapi.json).",
                405: f"Use {response.get('Allow', 'another method')}.",
            }.get(status, "The request could not be handled.")
            replaced = error_response(status, code, message)
            if "Allow" in response:
                replaced["Allow"] = response["Allow"]
            return replaced
        return response
