"""The Vercel back end: check the module like the local back end does, generate a Next.js
project, submit it as one deployment of the shared worker project, and read its state.

Every worker deployment is an immutable deployment inside ONE Vercel project
(VERCEL_WORKER_PROJECT_ID). Submitting is idempotent: `meta` carries our deployment's code,
and a submit first looks for a Vercel deployment with it (one may exist if an earlier attempt
died between Vercel's answer and our save).
"""

from dataclasses import dataclass, field

from django.conf import settings

from deployments import vercel_client as api
from deployments.contract import HEADERS
from deployments.generator import NotForNext, generate, invoke_secret, signed_run
from workers.addresses import vercel_alias

from .base import Backend, BuildFailed, RemoteDomain, TransientBackendError
from .invoke import post_invoke
from .local import curl_line


def alias_url(host: str) -> str:
    return f"https://{vercel_alias(host)}"


@dataclass
class Submitted:
    backend_id: str
    url: str
    state: str
    functions: list[str]
    log: list[str] = field(default_factory=list)
    secret_required: bool = False
    http: bool = False
    lockfile: str = ""


@dataclass
class Polled:
    state: str
    url: str
    error_message: str = ""
    log: str = ""

    @property
    def ready(self) -> bool:
        return self.state == "READY"

    @property
    def canceled(self) -> bool:
        return self.state == "CANCELED"

    @property
    def failed(self) -> bool:
        return api.is_failed(self.state) and not self.canceled


def remote_domain(answer: dict) -> RemoteDomain:
    """Vercel's project domain as the platform keeps it: verified, and the records its
    challenge asks for (shown to the tenant beside the platform's own)."""
    records = [
        {"type": str(v.get("type", "")), "name": str(v.get("domain", "")),
         "value": str(v.get("value", ""))}
        for v in answer.get("verification") or []
        if isinstance(v, dict)
    ]  # fmt: skip
    return RemoteDomain(verified=bool(answer["verified"]), records=records)


def translate(exc: api.VercelError) -> Exception:
    """Vercel's errors as the build's: transient ones are waited for, others end the build."""
    if isinstance(exc, api.VercelTransient):
        return TransientBackendError(exc.message, retry_after=exc.retry_after)
    return BuildFailed(exc.message)


class VercelBackend(Backend):
    name = "vercel"
    label = "Vercel"
    remote = True

    # Tenants see only the operator's domain: each deployment and each worker's production
    # answer under an alias there; Vercel's own address is for the platform's calls.
    def url(self, deployment) -> str:
        return alias_url(deployment.host)

    def production_url(self, worker) -> str:
        return alias_url(worker.host)

    def assign_address(self, deployment) -> None:
        """The deployment's own alias, assigned once its build is ready."""
        try:
            with self.client() as client:
                client.assign_alias(deployment.backend_id, vercel_alias(deployment.host))
        except api.VercelError as exc:
            raise translate(exc) from exc

    def point_production(self, worker, deployment) -> None:
        try:
            with self.client() as client:
                client.assign_alias(deployment.backend_id, vercel_alias(worker.host))
        except api.VercelError as exc:
            raise translate(exc) from exc

    def claim_domain(self, hostname: str) -> RemoteDomain:
        try:
            with self.client() as client:
                return remote_domain(client.add_project_domain(hostname))
        except api.VercelError as exc:
            raise translate(exc) from exc

    def verify_domain(self, hostname: str) -> RemoteDomain:
        try:
            with self.client() as client:
                try:
                    return remote_domain(client.verify_project_domain(hostname))
                except api.VercelPermanent as exc:
                    if exc.status != 400:
                        raise
                    # Not seen yet: what it still asks for, and why it said no.
                    found = remote_domain(client.project_domain(hostname))
                    found.reason = exc.message
                    return found
        except api.VercelError as exc:
            raise translate(exc) from exc

    def point_domain(self, hostname: str, deployment) -> None:
        try:
            with self.client() as client:
                client.assign_alias(deployment.backend_id, hostname)
        except api.VercelError as exc:
            raise translate(exc) from exc

    def release_domain(self, hostname: str) -> None:
        try:
            with self.client() as client:
                client.remove_project_domain(hostname)
        except api.VercelError as exc:
            raise translate(exc) from exc

    def progress(self, deployment) -> str:
        state = f": {deployment.backend_state.lower()}" if deployment.backend_state else ""
        return f"Building on Vercel{state}… this page updates by itself."

    def curl(self, deployment, function: str, show_secret: bool) -> str:
        # A private worker's callers use one of its invocation secrets (Settings), shown once
        # when made: the line names it, it never holds one.
        headers = []
        if not deployment.worker.public:
            headers.append("x-invoke-secret: <an invocation secret of this worker>")
        return curl_line(self.url(deployment), function, *headers)

    def invoke(
        self, deployment, function: str, payload_json: str, trigger: str = "portal", run: str = ""
    ):
        headers = {}
        if run:  # a run's call: its code keeps durable steps in the run's journal
            headers[HEADERS["run"]] = signed_run(deployment, run)
        # The platform's own secret: it opens the deployment whatever its visibility, and
        # lets the call name its trigger (recorded as on the local runtime).
        headers["x-invoke-secret"] = invoke_secret(deployment)
        headers[HEADERS["trigger"]] = trigger
        if settings.VERCEL_PROTECTION_BYPASS:
            headers["x-vercel-protection-bypass"] = settings.VERCEL_PROTECTION_BYPASS
        return post_invoke(deployment, deployment.backend_url, headers, function, payload_json)

    def client(self) -> api.VercelClient:
        try:
            return api.VercelClient()
        except api.VercelNotConfigured as exc:
            raise BuildFailed(exc.message) from exc

    def submit(self, deployment) -> Submitted:
        from deployments.build import build_program
        from deployments.config import limits

        # The same checks as the local back end, the startup check included (the module is
        # loaded once under the worker's memory limit, with its secrets): a module that
        # cannot start is refused before anything is sent. (The bundle itself is not sent:
        # Vercel builds the project; the build cache makes a retry cheap.)
        lock = "" if deployment.update_lock else deployment.lockfile
        built = build_program(
            deployment.program, lock, env=deployment.environment(),
            memory_mb=limits(deployment)["memoryMb"],
        )  # fmt: skip
        functions, http, lock, log = built.functions, built.http, built.lockfile, list(built.log)
        deployment.lockfile = lock
        try:
            files = generate(deployment, functions, http)
        except NotForNext as exc:
            raise BuildFailed(str(exc), "\n".join(log)) from exc
        code = str(deployment.code)
        try:
            with self.client() as client:
                existing = client.find_by_meta(api.META_KEY, code)
                if existing:
                    log.append(
                        f"-> Found the Vercel deployment of an earlier attempt: {existing['uid']}"
                    )
                    state = existing.get("readyState") or existing.get("state") or "QUEUED"
                    meta = existing.get("meta") or {}
                    required = meta.get("invokeSecret") == "required"
                    return Submitted(
                        existing["uid"], existing["url"], state, functions, log, required,
                        http, lock,
                    )  # fmt: skip
                required = not deployment.worker.public
                log.append(f"-> Submitting {len(files)} files to Vercel")
                answer = client.create_deployment(
                    f"{deployment.worker.name}-{deployment.tenant.slug}",
                    files,
                    meta={
                        api.META_KEY: code,
                        "tenant": deployment.tenant.slug,
                        "invokeSecret": "required" if required else "none",
                    },
                    inline_limit=settings.VERCEL_INLINE_FILE_BYTES,
                )
        except api.VercelError as exc:
            raise translate(exc) from exc
        log.append(f"Vercel deployment {answer['id']}: {answer['readyState']}")
        return Submitted(
            answer["id"], answer["url"], answer["readyState"], functions, log, required, http, lock
        )

    def poll(self, deployment) -> Polled:
        try:
            with self.client() as client:
                answer = client.get_deployment(deployment.backend_id)
                state = answer["readyState"]
                try:
                    log = api.build_log(client.events(deployment.backend_id))
                except api.VercelError:
                    log = ""  # the build log is a nicety; the state is what matters
        except api.VercelError as exc:
            raise translate(exc) from exc
        error = ""
        if api.is_failed(state) and state != "CANCELED":
            message = answer.get("errorMessage") or "The build failed on Vercel."
            code = answer.get("errorCode")
            error = f"{message} ({code})" if code else message
            if state == "DELETED":
                error = "The deployment was deleted on Vercel before it was ready."
        return Polled(state=state, url=answer["url"], error_message=error, log=log)

    def cancel(self, deployment) -> None:
        try:
            with self.client() as client:
                client.cancel_deployment(deployment.backend_id)
        except api.VercelError as exc:
            raise translate(exc) from exc

    def delete(self, backend_id: str) -> None:
        try:
            with self.client() as client:
                client.delete_deployment(backend_id)
        except api.VercelPermanent as exc:
            if exc.status != 404:  # already gone is what we wanted
                raise translate(exc) from exc
        except api.VercelError as exc:
            raise translate(exc) from exc
