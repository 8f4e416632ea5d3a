"""The interface every back end implements, and the errors builds report."""

from dataclasses import dataclass, field


class BuildFailed(Exception):
    """The tenant's code cannot be built; the message tells the tenant what to fix."""

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.message = message
        self.log = log


class TransientBackendError(Exception):
    """The back end failed for a reason that may pass (network, 5xx, rate limit)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class BuildResult:
    functions: list[str]
    artifact: str
    deployment_id: str
    log: list[str] = field(default_factory=list)


class Backend:
    name: str
    # A remote back end builds elsewhere: `submit`, then `poll` until a terminal state.
    remote = False

    def build(self, deployment) -> BuildResult:  # pragma: no cover - interface
        raise NotImplementedError
