"""The host grammar, in one place on this side (the runtime's copy: runtime/routing.ts).

A worker's production is served at `<worker>--<tenant>`, one deployment at
`<worker>--<deployment short id>--<tenant>`, each under the runtime's domain. Worker names,
short ids and tenant slugs are lowercase DNS-label pieces that never contain "--", so a
host splits back into its parts unambiguously. On the Vercel back end the same hosts are
aliases under VERCEL_ALIAS_DOMAIN (`<host>.<alias domain>`).
"""

from typing import NamedTuple

from django.conf import settings

SEPARATOR = "--"


class Address(NamedTuple):
    worker: str
    tenant: str
    deployment: str | None = None  # a short id; None: the worker's production


def worker_host(worker: str, tenant: str) -> str:
    return f"{worker}{SEPARATOR}{tenant}"


def deployment_host(worker: str, short_id: str, tenant: str) -> str:
    return f"{worker}{SEPARATOR}{short_id}{SEPARATOR}{tenant}"


def parse(host: str) -> Address | None:
    """The parts of a host, or None when it is not one of ours."""
    parts = host.split(SEPARATOR)
    if len(parts) == 2 and all(parts):
        return Address(worker=parts[0], tenant=parts[1])
    if len(parts) == 3 and all(parts):
        return Address(worker=parts[0], tenant=parts[2], deployment=parts[1])
    return None


def vercel_alias(host: str) -> str:
    """The name a host has on the Vercel back end."""
    return f"{host}.{settings.VERCEL_ALIAS_DOMAIN}"


def from_vercel_alias(name: str) -> str | None:
    """The host a Vercel alias name stands for; None for any other name."""
    suffix = "." + settings.VERCEL_ALIAS_DOMAIN
    if not settings.VERCEL_ALIAS_DOMAIN or not name.endswith(suffix):
        return None
    return name.removesuffix(suffix)
