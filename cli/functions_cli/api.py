"""The platform's public JSON API, as the CLI uses it: one client, errors turned into one
exception that carries the platform's message and the exit code a script can trust."""

import json
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx

from . import __version__

# Exit codes (the README lists them for scripts).
OK, FAILED, USAGE, REFUSED, NOT_FOUND, UNREACHABLE, LATER = 0, 1, 2, 3, 4, 5, 6
BY_STATUS = {401: REFUSED, 403: REFUSED, 404: NOT_FOUND, 409: LATER, 429: LATER}
USER_AGENT = f"functions-cli/{__version__}"


class Failure(Exception):
    """What went wrong, for a person (message) and for a script (exit_code, code)."""

    def __init__(
        self, message: str, exit_code: int = FAILED, code: str = "failed", status: int | None = None
    ):
        super().__init__(message)
        self.message, self.exit_code, self.code, self.status = message, exit_code, code, status


def aim(url: str) -> tuple[str, dict]:
    """`*.localhost` names are the machine itself (RFC 6761), but Python's resolver does not
    know them: connect to 127.0.0.1 and name the host in the Host header."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        port = f":{parts.port}" if parts.port else ""
        return urlunsplit(parts._replace(netloc=f"127.0.0.1{port}")), {"Host": f"{host}{port}"}
    return url, {}


def failure_of(response: httpx.Response) -> Failure:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    message = error.get("message") or f"The platform answered {response.status_code}."
    if response.status_code >= 500:
        return Failure(
            message, UNREACHABLE, error.get("code", "server_error"), response.status_code
        )
    exit_code = BY_STATUS.get(response.status_code, FAILED)
    return Failure(message, exit_code, error.get("code", "failed"), response.status_code)


class Api:
    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0):
        if not url:
            raise Failure(
                "No platform URL: sign in with `functions login --url URL` or set FUNCTIONS_URL.",
                USAGE,
                "no_url",
            )
        self.url = url.rstrip("/")
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.headers = headers
        self.timeout = timeout

    def request(
        self, method: str, path: str, body=None, params=None, timeout: float | None = None
    ) -> httpx.Response:
        url, extra = aim(path if path.startswith("http") else self.url + path)
        try:
            return httpx.request(
                method,
                url,
                json=body,
                params=params,
                headers={**self.headers, **extra},
                timeout=timeout or self.timeout,
            )
        except httpx.TimeoutException as exc:
            raise Failure(
                f"{self.url} did not answer in time ({exc.__class__.__name__}).",
                UNREACHABLE,
                "timeout",
            ) from exc
        except httpx.TransportError as exc:
            raise Failure(f"Cannot reach {self.url}: {exc}.", UNREACHABLE, "unreachable") from exc

    def call(self, method: str, path: str, body=None, params=None):
        """The answer's JSON (None for 204); a Failure for any error answer."""
        response = self.request(method, "/api" + path, body, params)
        if response.status_code >= 400:
            raise failure_of(response)
        return None if response.status_code == 204 else response.json()

    def events(
        self, path: str, params: dict, last_id: str | None
    ) -> Iterator[tuple[str, str, str]]:
        """(event, id, data) of a Server-Sent Events stream, until it ends or breaks."""
        url, extra = aim(self.url + "/api" + path)
        headers = {**self.headers, **extra, "Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        timeout = httpx.Timeout(10.0, read=60.0)
        with httpx.stream("GET", url, params=params, headers=headers, timeout=timeout) as response:
            if response.status_code >= 400:
                response.read()
                raise failure_of(response)
            event, event_id, data = "message", "", []
            for line in response.iter_lines():
                if not line:
                    if data:
                        yield event, event_id, "\n".join(data)
                    event, data = "message", []
                elif line.startswith(":"):
                    continue
                else:
                    field, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if field == "event":
                        event = value
                    elif field == "id":
                        event_id = value
                    elif field == "data":
                        data.append(value)


def json_of(text: str):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise Failure(f"Not JSON: {exc}.", USAGE, "invalid_json") from exc
