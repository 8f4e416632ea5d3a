"""The local back end: the program is built here (deployments.build); the runtime serves it."""

import shlex

from django.conf import settings

from deployments.contract import HEADERS

from .base import Backend, BuildResult
from .invoke import post_invoke


def runtime_url_for_host(host: str) -> str:
    port = settings.RUNTIME_PUBLIC_PORT
    default_port = {"http": 80, "https": 443}.get(settings.RUNTIME_PUBLIC_SCHEME)
    suffix = "" if port == default_port else f":{port}"
    return f"{settings.RUNTIME_PUBLIC_SCHEME}://{host}.{settings.RUNTIME_DOMAIN}{suffix}"


def path_url_for_host(host: str) -> str:
    return f"{settings.RUNTIME_URL}/d/{host}"


def curl_line(url: str, function: str, *headers: str) -> str:
    """A copyable curl command, each part quoted for a POSIX shell."""
    parts = ["curl", "-X", "POST", f"{url}/api/invoke/{function}"]
    for header in (*headers, "content-type: application/json"):
        parts += ["-H", header]
    return shlex.join([*parts, "-d", "{}"])


class LocalBackend(Backend):
    name = "local"
    label = "this platform's runtime"
    splits_traffic = True

    def url(self, deployment) -> str:
        return runtime_url_for_host(deployment.host)

    def production_url(self, worker) -> str:
        return runtime_url_for_host(worker.host)

    def plain_host_url(self, deployment_or_worker) -> str:
        return path_url_for_host(deployment_or_worker.host)

    def progress(self, deployment) -> str:
        return (
            "Building: finding exported functions, type-checking, bundling… "
            "this page updates by itself."
        )

    def curl(self, deployment, function: str, show_secret: bool) -> str:
        auth = [] if deployment.worker.public else ["Authorization: Bearer <API key>"]
        return curl_line(self.url(deployment), function, *auth)

    def invoke(
        self, deployment, function: str, payload_json: str, trigger: str = "portal", run: str = ""
    ):
        # The portal's own credential lets it call private workers and have the call
        # recorded as made from the portal (or as a run's, whose steps it then keeps); it is
        # not the one the runtime uses to call us.
        headers = {
            HEADERS["portalToken"]: settings.PORTAL_INVOKE_TOKEN,
            HEADERS["trigger"]: trigger,
        }
        if run:
            headers[HEADERS["run"]] = run
        base = path_url_for_host(deployment.host)
        return post_invoke(deployment, base, headers, function, payload_json)

    def build(self, deployment, on_step=None) -> BuildResult:
        from deployments.build import build_program
        from deployments.config import limits

        env = deployment.environment()
        lock = "" if deployment.update_lock else deployment.lockfile

        built = build_program(
            deployment.program,
            lock,
            env=env,
            memory_mb=limits(deployment)["memoryMb"],
            on_step=on_step,
        )
        return BuildResult(
            functions=built.functions,
            artifact=built.artifact,
            backend_id=f"local_{deployment.short_id}",
            log=built.log,
            http=built.http,
            lockfile=built.lockfile,
        )
