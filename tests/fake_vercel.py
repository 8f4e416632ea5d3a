"""A stand-in for the Vercel REST API: a real HTTP server on a local port.

It behaves like the documented API as far as the platform uses it: bodies are validated
against the official OpenAPI description (tests/vercel/openapi.json, a subset of Vercel's),
and so are its own answers, so the fake cannot drift from the spec unnoticed; deployments
move QUEUED -> BUILDING -> READY over time (or ERROR when told); uploaded files, the
missing_files flow, meta filters, cancel and delete work; and it can be told to fail: 429
with Retry-After, 500, malformed answers, or holding a create's answer (to crash the caller
between Vercel's answer and its save). Aliases are assigned and moved as documented: only to
READY deployments, a move answers the previous deployment's id, and the same pair twice is a
409.
"""

import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from jsonschema import Draft7Validator

SPEC = json.loads((Path(__file__).parent / "vercel" / "openapi.json").read_text())
NAME_OK = re.compile(r"^[a-z0-9._-]{1,100}$")


def nullable(schema):
    """OpenAPI 3.0's `nullable: true` as JSON Schema's type list (jsonschema knows only the
    latter). Vercel's description uses `oneOf` where its alternatives overlap (a full
    deployment also matches the short form), so it is read as `anyOf`."""
    if isinstance(schema, list):
        return [nullable(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {("anyOf" if k == "oneOf" else k): nullable(v) for k, v in schema.items()}
    if out.pop("nullable", False):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        elif "enum" in out:
            out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def validator(schema) -> Draft7Validator:
    # Refs point at #/components/..., so the components travel with the schema.
    return Draft7Validator({**nullable(schema), "components": nullable(SPEC["components"])})


ROUTES = [
    ("POST", re.compile(r"^/v13/deployments$"), "/v13/deployments"),
    ("GET", re.compile(r"^/v13/deployments/(?P<id>[^/]+)$"), "/v13/deployments/{idOrUrl}"),
    ("DELETE", re.compile(r"^/v13/deployments/(?P<id>[^/]+)$"), "/v13/deployments/{id}"),
    ("PATCH", re.compile(r"^/v12/deployments/(?P<id>[^/]+)/cancel$"), "/v12/deployments/{id}/cancel"),
    ("GET", re.compile(r"^/v6/deployments$"), "/v6/deployments"),
    ("GET", re.compile(r"^/v3/deployments/(?P<id>[^/]+)/events$"), "/v3/deployments/{idOrUrl}/events"),
    ("POST", re.compile(r"^/v2/files$"), "/v2/files"),
    ("POST", re.compile(r"^/v10/projects/(?P<id>[^/]+)/env$"), "/v10/projects/{idOrName}/env"),
    ("GET", re.compile(r"^/v2/deployments/(?P<id>[^/]+)/aliases$"), "/v2/deployments/{id}/aliases"),
    ("POST", re.compile(r"^/v2/deployments/(?P<id>[^/]+)/aliases$"), "/v2/deployments/{id}/aliases"),
    ("POST", re.compile(r"^/v10/projects/(?P<id>[^/]+)/domains$"), "/v10/projects/{idOrName}/domains"),
    ("GET", re.compile(r"^/v9/projects/(?P<id>[^/]+)/domains/(?P<domain>[^/]+)$"), "/v9/projects/{idOrName}/domains/{domain}"),
    ("DELETE", re.compile(r"^/v9/projects/(?P<id>[^/]+)/domains/(?P<domain>[^/]+)$"), "/v9/projects/{idOrName}/domains/{domain}"),
    ("POST", re.compile(r"^/v9/projects/(?P<id>[^/]+)/domains/(?P<domain>[^/]+)/verify$"), "/v9/projects/{idOrName}/domains/{domain}/verify"),
]  # fmt: skip


def operation(method: str, spec_path: str) -> dict:
    return SPEC["paths"][spec_path][method.lower()]


@dataclass
class Failure:
    method: str
    path: str  # a prefix of the request path
    status: int
    times: int = 1
    retry_after: str | None = None
    body: dict | None = None


@dataclass
class Build:
    id: str
    name: str
    url: str
    meta: dict
    files: dict
    created: float
    outcome: tuple = ("READY", "", "")
    canceled_at: float | None = None
    deleted: bool = False
    env: dict = field(default_factory=dict)


class FakeVercel:
    def __init__(self, token="fake-token", team_id="team_fake", project_id="prj_fake"):
        self.token, self.team_id, self.project_id = token, team_id, project_id
        self.queued_seconds, self.building_seconds = 0.3, 0.7
        self.builds: dict[str, Build] = {}
        self.files: dict[str, bytes] = {}
        self.env: dict[str, dict] = {}
        # alias host -> (alias uid, deployment id, ISO time assigned); the history of moves
        self.aliases: dict[str, tuple[str, str, str]] = {}
        self.alias_moves: list[tuple[float, str, str]] = []  # (time, alias, deployment id)
        self.alias_domains: set[str] = set()  # domains added to the project (empty: any)
        # Tenants' names added to the project: name -> its project domain. A new one asks for
        # Vercel's own TXT challenge (as for a name used elsewhere on Vercel), seen through
        # `txt` (name -> the TXT values there; a test points it at its DNS server).
        self.project_domains: dict[str, dict] = {}
        self.txt = lambda name: []
        self.requests: list[tuple[str, str, dict, object]] = []
        self.errors: list[str] = []  # requests or answers that do not match the spec
        self.failures: list[Failure] = []
        self.malformed: set[tuple[str, str]] = set()
        self.build_error: tuple[str, str] | None = None  # (errorCode, errorMessage) for new builds
        self.build_output: list[str] = []  # what the tenant's build prints, as stdout events
        self.hold_create_seconds = 0.0
        self.create_seen = threading.Event()
        self.lock = threading.RLock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def handle_any(self):
                fake.handle(self)

            do_GET = do_POST = do_PATCH = do_DELETE = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "FakeVercel":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- what tests tell it -----------------------------------------------------------------
    def fail(self, method, path, status, times=1, retry_after=None, body=None):
        self.failures.append(Failure(method, path, status, times, retry_after, body))

    def calls(self, method: str, prefix: str) -> list:
        return [r for r in self.requests if r[0] == method and r[1].startswith(prefix)]

    def with_meta(self, key: str, value: str) -> list[Build]:
        return [b for b in self.builds.values() if b.meta.get(key) == value]

    # --- the state of a build, from the clock ---------------------------------------------------
    def state(self, build: Build) -> str:
        now = time.time()
        if build.deleted:
            return "DELETED"
        queued_until = build.created + self.queued_seconds
        built_at = queued_until + self.building_seconds
        if build.canceled_at is not None and build.canceled_at < built_at:
            return "CANCELED"
        if now < queued_until:
            return "QUEUED"
        if now < built_at:
            return "BUILDING"
        return build.outcome[0]

    def deployment_doc(self, build: Build) -> dict:
        state = self.state(build)
        ms = int(build.created * 1000)
        doc = {
            "id": build.id, "url": build.url, "name": build.name, "meta": build.meta,
            "readyState": state, "status": state, "type": "LAMBDAS", "version": 2,
            "createdAt": ms, "buildingAt": ms + int(self.queued_seconds * 1000),
            "bootedAt": ms, "createdIn": "sfo1", "creator": {"uid": "usr_fake", "username": "ci"},
            "public": False, "regions": ["iad1"], "routes": None, "plan": "pro",
            "projectId": self.project_id, "ownerId": self.team_id,
            "inspectorUrl": f"https://vercel.com/fake/{build.name}/{build.id}",
            "aliasAssigned": state == "READY", "buildSkipped": False,
            "build": {"env": []}, "env": [], "isInConcurrentBuildsQueue": False,
            "isInSystemBuildsQueue": False,
            "projectSettings": {"framework": "nextjs", "buildCommand": "next build"},
        }  # fmt: skip
        if state == "ERROR":
            doc["errorCode"], doc["errorMessage"] = build.outcome[1], build.outcome[2]
        if state == "READY":
            doc["ready"] = ms + int((self.queued_seconds + self.building_seconds) * 1000)
        return doc

    def events(self, build: Build) -> list[dict]:
        state = self.state(build)
        ms = int(build.created * 1000)
        lines = [("command", 'Running "npm install --no-audit --no-fund"')]
        if state in {"BUILDING", "READY", "ERROR"}:
            lines += [("stdout", "added 472 packages in 31s"), ("command", 'Running "next build"')]
            lines += [("stdout", text) for text in self.build_output]
        if state == "READY":
            lines += [("stdout", "✓ Compiled successfully"), ("stdout", "ƒ /api/invoke/[fn]")]
        if state == "ERROR":
            lines += [("stderr", build.outcome[2]), ("exit", "")]
        events = []
        for i, (kind, text) in enumerate(lines):
            event = {"type": kind, "created": ms + i, "payload": {"id": f"evt_{i}", "date": ms + i,
                     "deploymentId": build.id, "serial": str(i), "created": ms + i}}  # fmt: skip
            if text:
                event["payload"]["text"] = text
            events.append(event)
        return events

    # --- HTTP -----------------------------------------------------------------------------------
    def handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length else b""
        method = h.command
        with self.lock:
            self.requests.append((method, url.path, query, raw))
            route = next(
                ((m, spec, rx.match(url.path)) for m, rx, spec in ROUTES if m == method and rx.match(url.path)),
                None,
            )  # fmt: skip
            status, body, headers = self.answer(h, method, url.path, query, raw, route)
        deliberate = self.is_malformed(method, url.path)  # wrong on purpose: not checked
        if route and status < 500 and status != 429 and not deliberate:
            self.check_answer(method, route[1], status, body)
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        if method == "POST" and route and route[1] == "/v13/deployments" and status == 200:
            self.create_seen.set()
            time.sleep(self.hold_create_seconds)  # the caller may die meanwhile
        try:
            h.send_response(status)
            h.send_header("content-type", "application/json; charset=utf-8")
            h.send_header("content-length", str(len(data)))
            for key, value in headers.items():
                h.send_header(key, value)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the caller died waiting (the crash tests do that on purpose)

    def check_answer(self, method, spec_path, status, body):
        responses = operation(method, spec_path).get("responses", {})
        content = (responses.get(str(status)) or {}).get("content", {}).get("application/json")
        if content and "schema" in content:
            for problem in validator(content["schema"]).iter_errors(body):
                self.errors.append(f"answer {method} {spec_path} {status}: {problem.message[:300]}")

    def error(self, status, code, message, **extra):
        return status, {"error": {"code": code, "message": message, **extra}}, {}

    def answer(self, h, method, path, query, raw, route):
        if h.headers.get("authorization") != f"Bearer {self.token}":
            return self.error(403, "forbidden", "Not authorized", invalidToken=True)
        if route is None:
            return self.error(404, "not_found", f"The requested path {path} was not found.")
        if query.get("teamId") != self.team_id:
            return self.error(404, "not_found", "The team was not found (is teamId missing?).")
        for failure in self.failures:
            if failure.method == method and path.startswith(failure.path) and failure.times > 0:
                failure.times -= 1
                headers = {"retry-after": failure.retry_after} if failure.retry_after else {}
                if failure.status == 429:
                    reset = time.time() + float(failure.retry_after or 1)
                    body = failure.body or {"error": {
                        "code": "rate_limited", "message": "Rate limit exceeded",
                        "limit": {"remaining": 0, "reset": int(reset), "resetMs": int(reset * 1000), "total": 100},
                    }}  # fmt: skip
                    return 429, body, headers
                return failure.status, failure.body or {"error": {"code": "internal_server_error", "message": "An unexpected internal error occurred"}}, headers  # fmt: skip
        if self.is_malformed(method, path):
            return 200, {"uid": 12, "state": None}, {}
        _, spec_path, match = route
        op = operation(method, spec_path)
        body = None
        if raw and spec_path != "/v2/files":
            try:
                body = json.loads(raw)
            except ValueError:
                return self.error(400, "bad_request", "Invalid JSON")
            schema = (
                op.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema")
            )
            if schema:
                problems = [p.message for p in validator(schema).iter_errors(body)]
                if problems:
                    self.errors.append(f"request {method} {spec_path}: {problems[0][:300]}")
                    return self.error(400, "bad_request", f"Invalid request: {problems[0][:300]}")
        handler = getattr(self, "op_" + re.sub(r"\W+", "_", f"{method} {spec_path}").strip("_"))
        return handler(h, query, raw, body, match)

    def is_malformed(self, method: str, path: str) -> bool:
        return any(method == m and path.startswith(p) for m, p in self.malformed)

    def find(self, id_or_url: str) -> Build | None:
        for build in self.builds.values():
            if not build.deleted and id_or_url in (build.id, build.url):
                return build
        return None

    def op_POST_v13_deployments(self, h, query, raw, body, match):
        name = body["name"]
        if "---" in name or not NAME_OK.match(name):
            return self.error(400, "bad_request", f"Invalid request: `name` {name!r} is not a valid name (lowercase letters, digits, '.', '_', '-', never '---').")  # fmt: skip
        if body.get("project") != self.project_id:
            return self.error(404, "not_found", "Project not found")
        files, missing = {}, []
        for entry in body.get("files", []):
            if "data" in entry:
                files[entry["file"]] = (
                    entry["data"].encode()
                    if entry.get("encoding", "utf-8") == "utf-8"
                    else entry["data"]
                )
            elif entry.get("sha") in self.files:
                files[entry["file"]] = self.files[entry["sha"]]
            else:
                missing.append(entry.get("sha"))
        if missing:
            return self.error(400, "missing_files", "Missing files", missing=missing)
        build_id = "dpl_" + uuid.uuid4().hex[:24]
        build = Build(
            id=build_id, name=name, url=f"{name}-{build_id[4:13]}-fake.vercel.app",
            meta=body.get("meta", {}), files=files, created=time.time(),
            outcome=("ERROR", *self.build_error) if self.build_error else ("READY", "", ""),
        )  # fmt: skip
        self.builds[build_id] = build
        return 200, self.deployment_doc(build), {}

    def op_GET_v13_deployments_idOrUrl(self, h, query, raw, body, match):
        build = self.find(match["id"])
        if build is None:
            return self.error(404, "not_found", "The deployment could not be found.")
        return 200, self.deployment_doc(build), {}

    def op_DELETE_v13_deployments_id(self, h, query, raw, body, match):
        build = self.find(match["id"])
        if build is None:
            return self.error(404, "not_found", "The deployment could not be found.")
        build.deleted = True
        return 200, {"uid": build.id, "state": "DELETED"}, {}

    def op_PATCH_v12_deployments_id_cancel(self, h, query, raw, body, match):
        build = self.find(match["id"])
        if build is None:
            return self.error(404, "not_found", "The deployment could not be found.")
        if self.state(build) not in {"QUEUED", "BUILDING", "INITIALIZING"}:
            return self.error(400, "bad_request", "The deployment is not building and cannot be canceled.")  # fmt: skip
        build.canceled_at = time.time()
        return 200, self.deployment_doc(build), {}

    def op_GET_v6_deployments(self, h, query, raw, body, match):
        wanted = {k[5:]: v for k, v in query.items() if k.startswith("meta-")}
        found = [
            b for b in self.builds.values()
            if not b.deleted and query.get("projectId", self.project_id) == self.project_id
            and all(b.meta.get(k) == v for k, v in wanted.items())
        ]  # fmt: skip
        found.sort(key=lambda b: b.created, reverse=True)
        limit = int(query.get("limit", 20))
        items = [
            {"uid": b.id, "name": b.name, "url": b.url, "created": int(b.created * 1000),
             "state": self.state(b), "readyState": self.state(b), "type": "LAMBDAS",
             "creator": {"uid": "usr_fake"}, "inspectorUrl": f"https://vercel.com/fake/{b.id}",
             "meta": b.meta, "projectId": self.project_id}
            for b in found[:limit]
        ]  # fmt: skip
        return 200, {"pagination": {"count": len(items), "next": None, "prev": None}, "deployments": items}, {}  # fmt: skip

    def op_GET_v3_deployments_idOrUrl_events(self, h, query, raw, body, match):
        build = self.find(match["id"])
        if build is None:
            return self.error(404, "not_found", "The deployment could not be found.")
        return 200, self.events(build), {}

    def op_POST_v2_files(self, h, query, raw, body, match):
        digest = h.headers.get("x-vercel-digest", "")
        if hashlib.sha1(raw).hexdigest() != digest:  # noqa: S324 - Vercel's own choice
            return self.error(400, "invalid_digest", "Digest is not valid")
        self.files[digest] = raw
        return 200, {}, {}

    def op_POST_v10_projects_idOrName_env(self, h, query, raw, body, match):
        if match["id"] != self.project_id:
            return self.error(404, "not_found", "Project not found")
        for item in body if isinstance(body, list) else [body]:
            if item["key"] in self.env and query.get("upsert") != "true":
                return self.error(409, "ENV_ALREADY_EXISTS", "A variable with this key exists")
            self.env[item["key"]] = item
        return 201, {"created": body, "failed": []}, {}

    def alias_target(self, alias: str) -> str | None:
        found = self.aliases.get(alias)
        return found[1] if found else None

    def op_POST_v2_deployments_id_aliases(self, h, query, raw, body, match):
        build = self.find(match["id"])
        if build is None:
            return self.error(404, "not_found", "The deployment was not found.")
        alias = body.get("alias") or ""
        if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", alias) or "." not in alias:
            return self.error(400, "invalid_alias", f"The supplied alias {alias!r} is invalid.")
        own = self.project_domains.get(alias)
        if own is not None and not own["verified"]:
            return self.error(400, "domain_not_verified", f"The domain {alias} is not verified for this project.")  # fmt: skip
        if (
            own is None
            and self.alias_domains
            and not any(alias.endswith("." + d) for d in self.alias_domains)
        ):
            return self.error(404, "not_found", "The domain used for the alias was not found.")
        if self.state(build) != "READY":
            return self.error(400, "deployment_not_ready", "The deployment is not READY and can not be aliased.")  # fmt: skip
        before = self.aliases.get(alias)
        if before and before[1] == build.id:
            return self.error(409, "alias_in_use", "The provided alias is already assigned to the given deployment.")  # fmt: skip
        uid = before[0] if before else uuid.uuid4().hex[:24]
        created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        self.aliases[alias] = (uid, build.id, created)
        self.alias_moves.append((time.time(), alias, build.id))
        answer = {"uid": uid, "alias": alias, "created": created}
        if before:
            answer["oldDeploymentId"] = before[1]
        return 200, answer, {}

    # --- project domains ---------------------------------------------------------------------
    def project_domain_doc(self, name: str) -> dict:
        return dict(self.project_domains[name])

    def op_POST_v10_projects_idOrName_domains(self, h, query, raw, body, match):
        if match["id"] != self.project_id:
            return self.error(404, "not_found", "Project not found")
        name = body["name"].lower()
        if name in self.project_domains:
            return self.error(400, "domain_already_exists", f"The domain {name} is already assigned to this project")  # fmt: skip
        apex = ".".join(name.split(".")[-2:])
        now = int(time.time() * 1000)
        self.project_domains[name] = {
            "name": name, "apexName": apex, "projectId": self.project_id, "redirect": None,
            "redirectStatusCode": None, "gitBranch": None, "customEnvironmentId": None,
            "updatedAt": now, "createdAt": now, "verified": False,
            "verification": [{"type": "TXT", "domain": f"_vercel.{apex}",
                              "value": f"vc-domain-verify={name},{uuid.uuid4().hex[:20]}",
                              "reason": "pending_domain_verification"}],
        }  # fmt: skip
        return 200, self.project_domain_doc(name), {}

    def op_GET_v9_projects_idOrName_domains_domain(self, h, query, raw, body, match):
        if match["id"] != self.project_id or match["domain"] not in self.project_domains:
            return self.error(404, "not_found", "The project domain was not found")
        return 200, self.project_domain_doc(match["domain"]), {}

    def op_DELETE_v9_projects_idOrName_domains_domain(self, h, query, raw, body, match):
        if match["id"] != self.project_id or match["domain"] not in self.project_domains:
            return self.error(404, "not_found", "The domain could not be found")
        del self.project_domains[match["domain"]]
        for alias in [a for a in self.aliases if a == match["domain"]]:
            del self.aliases[alias]
        return 200, {}, {}

    def op_POST_v9_projects_idOrName_domains_domain_verify(self, h, query, raw, body, match):
        found = self.project_domains.get(match["domain"])
        if match["id"] != self.project_id or found is None:
            return self.error(400, "not_found", "Project domain does not exist")
        if not found["verified"]:
            challenge = found["verification"][0]
            if challenge["value"] not in self.txt(challenge["domain"]):
                return self.error(400, "missing_txt_record", f"Domain {challenge['domain']} is missing required TXT Record \"{challenge['value']}\"")  # fmt: skip
            found["verified"] = True
            del found["verification"]
        return 200, self.project_domain_doc(match["domain"]), {}

    def op_GET_v2_deployments_id_aliases(self, h, query, raw, body, match):
        build = self.find(match["id"])
        if build is None:
            return self.error(404, "not_found", "The deployment was not found.")
        mine = [
            {"uid": uid, "alias": alias, "created": created}
            for alias, (uid, target, created) in self.aliases.items()
            if target == build.id
        ]
        return 200, {"aliases": mine}, {}
