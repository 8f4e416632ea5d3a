"""The Vercel REST API, as far as this platform uses it (one module, httpx).

Every call carries `teamId` and a timeout. Failures are sorted into `VercelTransient` (429,
5xx, network: worth waiting for; `retry_after` says how long Vercel asked for) and
`VercelPermanent` (other 4xx, with Vercel's own code and message kept). An answer that does
not have the documented shape is a `VercelBadAnswer`, reported with what was missing.
Reference: the API notes and OpenAPI subset in the Vercel back end's documentation.
"""

import hashlib
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from time import time

import httpx
from django.conf import settings

SETTINGS = (
    "VERCEL_API_URL",
    "VERCEL_API_TOKEN",
    "VERCEL_TEAM_ID",
    "VERCEL_WORKER_PROJECT_ID",
    "VERCEL_ALIAS_DOMAIN",
)
NAME_INVALID = re.compile(r"[^a-z0-9._-]+")
FAILED_STATES = {"ERROR", "CANCELED", "DELETED"}
META_KEY = "workersDeployment"  # our deployment's code, to find it again after a crash


class VercelError(Exception):
    def __init__(self, message: str, code: str = "", status: int = 0):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class VercelNotConfigured(VercelError):
    pass


class VercelTransient(VercelError):
    def __init__(self, message: str, code: str = "", status: int = 0, retry_after=None):
        super().__init__(message, code, status)
        self.retry_after = retry_after  # seconds Vercel asked us to wait, if it said


class VercelPermanent(VercelError):
    def __init__(self, message: str, code: str = "", status: int = 0, body=None):
        super().__init__(message, code, status)
        self.body = body or {}


class VercelBadAnswer(VercelPermanent):
    pass


@dataclass(frozen=True)
class VercelConfig:
    api_url: str
    token: str
    team_id: str
    project_id: str
    protection_bypass: str = ""

    @classmethod
    def from_settings(cls) -> "VercelConfig":
        missing = [name for name in SETTINGS if not getattr(settings, name, "")]
        if missing:
            raise VercelNotConfigured(
                "The Vercel back end is not configured: set the environment variable"
                f"{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                "(the operator's job), or deploy with the local back end.",
                code="not_configured",
            )
        return cls(
            api_url=settings.VERCEL_API_URL.rstrip("/"),
            token=settings.VERCEL_API_TOKEN,
            team_id=settings.VERCEL_TEAM_ID,
            project_id=settings.VERCEL_WORKER_PROJECT_ID,
            protection_bypass=settings.VERCEL_PROTECTION_BYPASS,
        )


def file_sha(data: bytes) -> str:
    """Vercel names uploaded files by SHA-1 (an integrity check, not security)."""
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def deployment_name(*parts: str) -> str:
    """A valid Vercel name: lowercase letters, digits, '.', '_', '-', at most 100 characters,
    and never '---' (Vercel refuses it; the first version's names broke on it)."""
    name = NAME_INVALID.sub("-", "-".join(parts).lower())
    name = re.sub(r"-{3,}", "--", name).strip("-._")[:100].rstrip("-._")
    return name or "worker"


def retry_after_seconds(response: httpx.Response, body: dict) -> float | None:
    """Retry-After (seconds or an HTTP date), else the body's error.limit.resetMs/reset."""
    header = response.headers.get("retry-after")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(header).timestamp() - time())
            except (TypeError, ValueError):
                pass
    limit = (body.get("error") or {}).get("limit") if isinstance(body, dict) else None
    if isinstance(limit, dict):
        if isinstance(limit.get("resetMs"), int | float):
            return max(0.0, limit["resetMs"] / 1000 - time())
        if isinstance(limit.get("reset"), int | float):
            return max(0.0, limit["reset"] - time())
    return None


def require(answer, shape: dict[str, type | tuple], what: str):
    """The fields we read, with their types; anything else Vercel sends is ignored."""
    if not isinstance(answer, dict):
        raise VercelBadAnswer(
            f"Vercel's answer to {what} is not a JSON object as documented.", code="bad_answer"
        )
    for field, kind in shape.items():
        if not isinstance(answer.get(field), kind):
            raise VercelBadAnswer(
                f"Vercel's answer to {what} does not match the documented shape: "
                f"{field!r} is missing or not {getattr(kind, '__name__', kind)}.",
                code="bad_answer",
            )
    return answer


DEPLOYMENT_SHAPE = {"id": str, "url": str, "readyState": str}


class VercelClient:
    def __init__(self, config: VercelConfig | None = None, timeout: float = 30.0):
        self.config = config or VercelConfig.from_settings()
        self.http = httpx.Client(
            base_url=self.config.api_url,
            headers={"authorization": f"Bearer {self.config.token}"},
            timeout=httpx.Timeout(timeout, connect=10.0),
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- plumbing -------------------------------------------------------------------------
    def request(self, method: str, path: str, *, params=None, **kwargs):
        what = f"{method} {path}"
        query = {"teamId": self.config.team_id, **(params or {})}
        try:
            response = self.http.request(method, path, params=query, **kwargs)
        except httpx.TimeoutException as exc:
            raise VercelTransient(f"{what} timed out ({exc.__class__.__name__}).") from exc
        except httpx.HTTPError as exc:
            raise VercelTransient(f"{what} failed: {exc.__class__.__name__}: {exc}") from exc
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = None
        if response.status_code < 400:
            if body is None:
                raise VercelBadAnswer(f"Vercel's answer to {what} is not JSON.", code="bad_answer")
            return body
        error = (body or {}).get("error") or (body or {}).get("err") or {}
        if not isinstance(error, dict):
            error = {}
        code = str(error.get("code") or f"http_{response.status_code}")
        message = str(error.get("message") or response.reason_phrase or "no message")
        text = f"Vercel answered {response.status_code} to {what}: {message} ({code})"
        if response.status_code == 429 or response.status_code >= 500:
            raise VercelTransient(
                text,
                code=code,
                status=response.status_code,
                retry_after=retry_after_seconds(response, body or {}),
            )
        raise VercelPermanent(text, code=code, status=response.status_code, body=body)

    # --- deployments ------------------------------------------------------------------------
    def create_deployment(
        self, name: str, files: dict[str, str], meta: dict[str, str], inline_limit: int = 0
    ) -> dict:
        """Files up to `inline_limit` bytes go inline; bigger ones by SHA-1, uploaded when
        Vercel answers missing_files, then the create is sent again."""
        blobs = {path: content.encode() for path, content in files.items()}
        entries = []
        for path, data in blobs.items():
            if len(data) <= inline_limit:
                entries.append({"file": path, "data": data.decode(), "encoding": "utf-8"})
            else:
                sha = file_sha(data)
                entries.append({"file": path, "sha": sha, "size": len(data)})
        body = {
            "name": deployment_name(name),
            "project": self.config.project_id,
            "files": entries,
            "meta": meta,
            "projectSettings": {
                "framework": "nextjs",
                "installCommand": "npm install --no-audit --no-fund",
                "buildCommand": "next build",
            },
        }
        params = {"skipAutoDetectionConfirmation": "1"}
        by_sha = {file_sha(d): d for d in blobs.values()}
        for _ in range(3):
            try:
                answer = self.request("POST", "/v13/deployments", params=params, json=body)
                return require(answer, DEPLOYMENT_SHAPE, "POST /v13/deployments")
            except VercelPermanent as exc:
                missing = (exc.body.get("error") or {}).get("missing") if exc.body else None
                if exc.code != "missing_files" or not isinstance(missing, list):
                    raise
                for sha in missing:
                    if sha not in by_sha:
                        raise VercelPermanent(
                            f"Vercel asked for a file we did not send ({sha}).",
                            code="missing_files",
                        ) from exc
                    self.upload_file(by_sha[sha])
        raise VercelPermanent(
            "Vercel kept answering missing_files after the uploads.", code="missing_files"
        )

    def upload_file(self, data: bytes) -> str:
        sha = file_sha(data)
        self.request(
            "POST",
            "/v2/files",
            content=data,
            headers={
                "content-type": "application/octet-stream",
                "x-vercel-digest": sha,
                "content-length": str(len(data)),
            },
        )
        return sha

    def get_deployment(self, id_or_url: str) -> dict:
        what = f"GET /v13/deployments/{id_or_url}"
        return require(self.request("GET", f"/v13/deployments/{id_or_url}"), DEPLOYMENT_SHAPE, what)

    def cancel_deployment(self, deployment_id: str) -> dict:
        path = f"/v12/deployments/{deployment_id}/cancel"
        return require(self.request("PATCH", path), DEPLOYMENT_SHAPE, f"PATCH {path}")

    def delete_deployment(self, deployment_id: str) -> dict:
        path = f"/v13/deployments/{deployment_id}"
        return require(self.request("DELETE", path), {"uid": str, "state": str}, f"DELETE {path}")

    def find_by_meta(self, key: str, value: str) -> dict | None:
        """The project's deployment whose meta[key] is value (the newest, if several)."""
        params = {"projectId": self.config.project_id, f"meta-{key}": value, "limit": "20"}
        answer = require(
            self.request("GET", "/v6/deployments", params=params),
            {"deployments": list},
            "GET /v6/deployments",
        )
        found = [
            d
            for d in answer["deployments"]
            if isinstance(d, dict) and (d.get("meta") or {}).get(key) == value
        ]
        for item in found:
            require(item, {"uid": str, "url": str}, "GET /v6/deployments (a deployment)")
        found.sort(key=lambda d: d.get("created") or 0, reverse=True)
        return found[0] if found else None

    def assign_alias(self, deployment_id: str, alias: str) -> dict:
        """Point `alias` (a host name on the operator's domain) at the deployment; Vercel moves
        it from the deployment it served before. Asking again for the same pair is done."""
        path = f"/v2/deployments/{deployment_id}/aliases"
        try:
            answer = self.request("POST", path, json={"alias": alias})
        except VercelPermanent as exc:
            if exc.status == 409 and self.alias_points_at(deployment_id, alias):
                return {"alias": alias, "uid": "", "created": ""}
            raise
        return require(answer, {"uid": str, "alias": str, "created": str}, f"POST {path}")

    def alias_points_at(self, deployment_id: str, alias: str) -> bool:
        path = f"/v2/deployments/{deployment_id}/aliases"
        answer = require(self.request("GET", path), {"aliases": list}, f"GET {path}")
        return any(isinstance(a, dict) and a.get("alias") == alias for a in answer["aliases"])

    # --- a tenant's own domains on the shared project -----------------------------------------
    # A project domain: {name, verified, verification: [{type, domain, value, reason}]}. Vercel
    # serves it only once verified (its own TXT challenge when the name is used elsewhere);
    # then an alias points it at a deployment, as for the operator's own names.

    def add_project_domain(self, name: str) -> dict:
        """Adds the name to the project; a name already there is looked up instead."""
        path = f"/v10/projects/{self.config.project_id}/domains"
        try:
            answer = self.request("POST", path, json={"name": name})
        except VercelPermanent as exc:
            if exc.status == 400 and exc.code in (
                "domain_already_exists",
                "existing_project_domain",
            ):
                return self.project_domain(name)
            raise
        return require(answer, {"name": str, "verified": bool}, f"POST {path}")

    def project_domain(self, name: str) -> dict:
        path = f"/v9/projects/{self.config.project_id}/domains/{name}"
        return require(self.request("GET", path), {"name": str, "verified": bool}, f"GET {path}")

    def verify_project_domain(self, name: str) -> dict:
        """The domain once Vercel has seen its challenge; VercelPermanent (400) while not."""
        path = f"/v9/projects/{self.config.project_id}/domains/{name}/verify"
        return require(self.request("POST", path), {"name": str, "verified": bool}, f"POST {path}")

    def remove_project_domain(self, name: str) -> None:
        path = f"/v9/projects/{self.config.project_id}/domains/{name}"
        try:
            self.request("DELETE", path)
        except VercelPermanent as exc:
            if exc.status != 404:  # gone already: done
                raise

    def events(self, id_or_url: str) -> list[dict]:
        path = f"/v3/deployments/{id_or_url}/events"
        answer = self.request("GET", path, params={"limit": "-1"})
        if not isinstance(answer, list):
            raise VercelBadAnswer(
                f"Vercel's answer to GET {path} is not a list of events.", code="bad_answer"
            )
        return [event for event in answer if isinstance(event, dict)]


def event_text(event: dict) -> str:
    """One build-log line from a build event. The API notes put `text` at the top; the
    OpenAPI description also has events with `payload.text`: read both."""
    text = event.get("text")
    if not isinstance(text, str):
        payload = event.get("payload")
        text = payload.get("text") if isinstance(payload, dict) else None
    return text if isinstance(text, str) else ""


# What is kept of a build's log on Vercel: its end, where a failure says why. What the
# tenant's build prints there is the tenant's to choose, and it is stored with the deployment.
BUILD_LOG_BYTES = 256 * 1024


def build_log(events: list[dict], most: int = BUILD_LOG_BYTES) -> str:
    lines = []
    for event in events:
        if event.get("type") in {"stdout", "stderr", "command", "fatal"}:
            text = event_text(event).rstrip("\n")
            if text:
                lines.append(text)
    kept, size = [], 0
    for line in reversed(lines):
        size += len(line.encode()) + 1  # bytes, as the note below says
        if size > most:
            break
        kept.append(line)
    if len(kept) < len(lines):
        cut = len(lines) - len(kept)
        kept.append(
            f"[the first {cut} of its {len(lines)} lines are not kept: only the last {most // 1024} KB are]"
        )
    return "\n".join(reversed(kept))


def poll_delay(elapsed: float) -> float:
    """The cadence of Vercel's own CLI: 1 s for 15 s, 5 s to a minute, 15 s to five, then 30 s."""
    if elapsed < 15:
        return 1.0
    if elapsed < 60:
        return 5.0
    if elapsed < 300:
        return 15.0
    return 30.0


def is_failed(state: str) -> bool:
    return state in FAILED_STATES or state.endswith("_ERROR")
