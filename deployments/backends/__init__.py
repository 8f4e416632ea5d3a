"""Back ends that build and serve deployments; `get_backend` picks one by name."""

from .base import Backend, BuildFailed, BuildResult, TransientBackendError


def get_backend(name: str) -> Backend:
    if name == "local":
        from .local import LocalBackend

        return LocalBackend()
    if name == "vercel":
        from .vercel import VercelBackend

        return VercelBackend()
    raise ValueError(f"Unknown back end {name!r}")


__all__ = ["Backend", "BuildFailed", "BuildResult", "TransientBackendError", "get_backend"]
