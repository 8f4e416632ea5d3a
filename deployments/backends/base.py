"""The interface every back end implements, and the errors builds report.

Everything that differs between back ends is a method or property here, so no code or
template outside this package asks which back end a deployment has.
"""

from dataclasses import dataclass, field

from deployments.errors import BuildFailed

__all__ = ["Backend", "BuildFailed", "BuildResult", "InvokeAnswer", "TransientBackendError"]


class TransientBackendError(Exception):
    """The back end failed for a reason that may pass (network, 5xx, rate limit)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class BuildResult:
    functions: list[str]
    artifact: str
    backend_id: str
    log: list[str] = field(default_factory=list)
    http: bool = False  # the module's default export serves raw HTTP
    lockfile: str = ""  # the packages it resolved, pinned


@dataclass
class InvokeAnswer:
    status: int
    body: dict

    @property
    def ok(self) -> bool:
        return self.status == 200


class Backend:
    name: str
    label: str
    # A remote back end builds elsewhere: `submit`, then `poll` until a terminal state;
    # `cancel` and `delete` reach it there. A local one `build`s in the Celery task.
    remote = False
    # Whether this platform's runtime serves its deployments, so it can split a production
    # URL's traffic between two of them (a canary).
    splits_traffic = False

    def build(self, deployment, on_step=None) -> BuildResult:  # pragma: no cover - interface
        """Builds here; `on_step(title)` is told as each step starts."""
        raise NotImplementedError

    def url(self, deployment) -> str:
        """Where this one deployment answers."""
        raise NotImplementedError  # pragma: no cover - interface

    def production_url(self, worker) -> str:
        """The worker's stable URL, which serves its production deployment."""
        raise NotImplementedError  # pragma: no cover - interface

    def plain_host_url(self, deployment_or_worker) -> str | None:
        """The same URL for clients that cannot resolve wildcard names, where there is one."""
        return None

    def progress(self, deployment) -> str:
        """What the deployment panel says while the build runs."""
        return "Building… this page updates by itself."

    def curl(self, deployment, function: str, show_secret: bool) -> str:
        """A command that invokes `function` as an outside caller would."""
        raise NotImplementedError  # pragma: no cover - interface

    def invoke(
        self, deployment, function: str, payload_json: str, trigger: str = "portal", run: str = ""
    ) -> InvokeAnswer:
        """Invoke from the portal (or a run, `trigger` async, cron or retry, `run` its id: its
        code's durable steps are that run's), through the same door as any other caller."""
        raise NotImplementedError  # pragma: no cover - interface

    def assign_address(self, deployment) -> None:
        """Give a ready deployment its public address on the back end, where it needs one."""

    def point_production(self, worker, deployment) -> None:
        """Make the worker's production URL serve `deployment` on the back end itself, where
        the back end serves it (an alias); the runtime's own URLs follow announcements."""

    # A tenant's own domain on a back end that serves names itself (Vercel): claimed there,
    # verified by the back end's own challenge where it asks one, pointed at production. The
    # local runtime serves verified domains through the control plane and needs none of it.
    def claim_domain(self, hostname: str) -> "RemoteDomain":
        """Add the name where the back end serves; what it still asks for."""
        return RemoteDomain(verified=True, records=[])

    def verify_domain(self, hostname: str) -> "RemoteDomain":
        """Ask the back end to look for its challenge again."""
        return RemoteDomain(verified=True, records=[])

    def point_domain(self, hostname: str, deployment) -> None:
        """Make the name serve `deployment` (the worker's production)."""

    def release_domain(self, hostname: str) -> None:
        """The name no longer serves here."""


@dataclass
class RemoteDomain:
    verified: bool
    records: list[dict]  # what the back end asks the tenant to create: {type, name, value}
    reason: str = ""
