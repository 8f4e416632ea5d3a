"""Back ends that build and serve deployments; `get_backend` picks one by name."""

from functools import cache

from django.conf import settings

from .base import Backend, BuildFailed, BuildResult, InvokeAnswer, TransientBackendError

NAMES = ("local", "vercel")


@cache
def get_backend(name: str) -> Backend:
    if name == "local":
        from .local import LocalBackend

        return LocalBackend()
    if name == "vercel":
        from .vercel import VercelBackend

        return VercelBackend()
    raise ValueError(f"Unknown back end {name!r}")


def backend_for_worker(worker) -> Backend:
    """The back end of the worker's production deployment, else where its next one goes."""
    if worker.production_id is not None:
        return get_backend(worker.production.backend)
    return get_backend(worker.tenant.backend or settings.DEFAULT_BACKEND)


__all__ = [
    "Backend",
    "BuildFailed",
    "BuildResult",
    "InvokeAnswer",
    "TransientBackendError",
    "backend_for_worker",
    "get_backend",
]
