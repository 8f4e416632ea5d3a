"""Tenants' own domains: claimed by a tenant, verified by a DNS TXT record it creates, checked
again on a schedule, served (routes of path prefixes to its workers' production) only while
verified. The runtime asks `routes_for`; the edge asks `may_have_certificate` before it
gets a certificate for a name (docs/domains.md)."""

import secrets
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import ip_address

import dns.exception
import dns.name
import dns.resolver
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from tenancy.access import acts
from tenancy.models import Tenant
from tenancy.quotas import check_room

from .addresses import parse, worker_host
from .models import Domain, DomainRoute, Worker

TOKEN_PREFIX = "functions-verify="
PREFIX_MAX = 200


class DomainError(ValueError):
    """Why a name or a route cannot be had, for people."""


def normalise(text: str) -> str:
    """A hostname as stored: lowercase, ASCII (punycode for international names), no final
    dot. Raises DomainError for what cannot be a tenant's hostname."""
    text = (text or "").strip().rstrip(".").lower()
    if not text:
        raise DomainError("Give a hostname, such as api.example.com.")
    try:
        ip_address(text.strip("[]"))
    except ValueError:
        pass
    else:
        raise DomainError("An IP address cannot be verified: give a hostname.")
    if "*" in text:
        raise DomainError("Wildcard names cannot be claimed: add each hostname.")
    try:
        name = dns.name.from_unicode(text).to_text(omit_final_dot=True)
    except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
        raise DomainError(f"{text!r} is not a hostname ({exc}).") from None
    labels = name.split(".")
    if len(labels) < 2 or len(name) > 253:
        raise DomainError(f"{text!r} is not a full hostname (such as api.example.com).")
    for label in labels:
        if (
            not (0 < len(label) <= 63)
            or label.startswith("-")
            or label.endswith("-")
            or not all(c.isascii() and (c.isalnum() or c == "-") for c in label)
        ):
            raise DomainError(
                f"{text!r} is not a hostname: each part has letters, digits and hyphens."
            )
    if labels[-1].isdigit():
        raise DomainError(f"{text!r} is not a hostname.")
    for own in reserved():
        if name == own or name.endswith(f".{own}"):
            raise DomainError(f"{name} belongs to the platform and cannot be claimed.")
    return name


def reserved() -> set[str]:
    """The platform's own names: no tenant may claim them or a name under them."""
    names = {settings.RUNTIME_DOMAIN, getattr(settings, "VERCEL_ALIAS_DOMAIN", ""), "localhost"}
    names |= {h.lstrip(".") for h in settings.PLATFORM_HOSTS if h not in ("*",)}
    names |= set(settings.DOMAINS_RESERVED)
    return {n.lower().rstrip(".") for n in names if n}


def add(tenant: Tenant, hostname: str, by: str) -> Domain:
    name = normalise(hostname)
    if tenant.domains.filter(hostname=name).exists():
        raise DomainError(f"{name} is already one of this tenant's domains.")
    if held_elsewhere(name, tenant):
        raise DomainError(f"{name} is verified by another tenant of this platform; it serves "
                          "them until they remove it or its record goes.")  # fmt: skip
    check_room(tenant, "max_domains")
    try:
        with transaction.atomic():
            return Domain.objects.create(
                tenant=tenant, hostname=name, token=secrets.token_hex(16), added_by=by,
                next_check_at=timezone.now(),
            )  # fmt: skip
    except IntegrityError:
        raise DomainError(f"{name} is already one of this tenant's domains.") from None


def held_elsewhere(name: str, tenant: Tenant) -> bool:
    return (
        Domain.objects.filter(hostname=name, status=Domain.Status.VERIFIED)
        .exclude(tenant=tenant)
        .exists()
    )


def resolver() -> dns.resolver.Resolver:
    """The resolver that checks records: DOMAINS_DNS_SERVERS, else the system's."""
    servers = settings.DOMAINS_DNS_SERVERS
    found = dns.resolver.Resolver(configure=not servers)
    if servers:
        found.nameservers = []
        ports = {}
        for server in servers:
            host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
            found.nameservers.append(host)
            ports[host] = int(port or 53)
        found.nameserver_ports = ports
    found.lifetime = settings.DOMAINS_DNS_TIMEOUT_SECONDS  # one check, all servers together
    found.cache = None  # a record just created must be seen at once
    return found


@dataclass
class Seen:
    found: bool | None  # None: the DNS could not say (a timeout, a failing server)
    reason: str


def look(domain: Domain) -> Seen:
    want = f"{TOKEN_PREFIX}{domain.token}"
    try:
        answer = resolver().resolve(domain.record_name, "TXT", raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return Seen(False, f"No TXT record at {domain.record_name}.")
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        return Seen(
            None, f"The DNS did not answer for {domain.record_name} ({exc.__class__.__name__})."
        )
    except dns.exception.DNSException as exc:
        return Seen(None, f"The DNS could not be asked: {exc}")
    texts = [b"".join(r.strings).decode(errors="replace") for r in answer.rrset or []]
    if want in texts:
        return Seen(True, "")
    if texts:
        return Seen(False, f"The TXT record at {domain.record_name} holds {', '.join(texts)[:200]}, "
                           f"not {want}.")  # fmt: skip
    return Seen(False, f"No TXT record at {domain.record_name}.")


def check(domain: Domain) -> Domain:
    """Looks for the domain's record now and keeps what it found: a found record verifies it
    (unless another tenant holds the name), a record gone stops serving it, a DNS that
    cannot say changes nothing but the note."""
    seen = look(domain)
    now = timezone.now()
    fields: dict = {"checked_at": now, "last_error": seen.reason[:500]}
    if seen.found is True:
        if held_elsewhere(domain.hostname, domain.tenant):
            fields |= {"status": Domain.Status.PENDING, "last_error": "Verified by another "
                       "tenant first: it serves them until they remove it."}  # fmt: skip
        elif domain.status != Domain.Status.VERIFIED:
            fields |= {"status": Domain.Status.VERIFIED, "verified_at": now, "failing_since": None}
    elif seen.found is False and domain.status == Domain.Status.VERIFIED:
        fields |= {"status": Domain.Status.FAILING, "failing_since": now}
    wait = (
        settings.DOMAINS_RECHECK_SECONDS
        if fields.get("status", domain.status) == Domain.Status.VERIFIED
        else settings.DOMAINS_PENDING_CHECK_SECONDS
    )
    fields["next_check_at"] = now + timedelta(seconds=wait)
    try:
        with transaction.atomic():
            Domain.objects.filter(pk=domain.pk).update(**fields)
    except IntegrityError:  # another tenant's claim was verified a moment before
        fields |= {"status": Domain.Status.PENDING, "verified_at": None,
                   "last_error": "Verified by another tenant first."}  # fmt: skip
        Domain.objects.filter(pk=domain.pk).update(**fields)
    domain.refresh_from_db()
    return domain


def check_due(now=None, limit: int = 200) -> int:
    """Checks the domains whose time has come; how many were checked."""
    now = now or timezone.now()
    due = list(Domain.objects.select_related("tenant").filter(next_check_at__lte=now)[:limit])
    for domain in due:
        check(domain)
    return len(due)


def set_route(domain: Domain, worker: Worker, prefix: str) -> DomainRoute:
    if worker.tenant_id != domain.tenant_id:
        raise DomainError("A domain serves only its own tenant's workers.")
    prefix = clean_prefix(prefix)
    route, _ = DomainRoute.objects.update_or_create(
        domain=domain, prefix=prefix, defaults={"worker": worker}
    )
    return route


def clean_prefix(prefix: str) -> str:
    prefix = (prefix or "/").strip()
    if not prefix.startswith("/"):
        prefix = "/" + prefix
    if not prefix.endswith("/"):
        prefix += "/"
    if len(prefix) > PREFIX_MAX or any(c in prefix for c in "?#* \t\r\n") or "//" in prefix:
        raise DomainError("A path prefix is a path such as /api/ (no query, no wildcards).")
    return prefix


def serves(hostname: str) -> dict | None:
    """What a verified domain of an active tenant serves: {"portal": true} (the tenant's
    portal, through the web processes) or {"portal": false, "routes": [{prefix, host}]}
    (longest prefix first); None for any other name."""
    domain = (
        Domain.objects.select_related("tenant")
        .filter(hostname=hostname.lower().rstrip("."), status=Domain.Status.VERIFIED)
        .first()
    )
    if domain is None or not acts(domain.tenant):
        return None
    if domain.portal:
        return {"portal": True, "routes": []}
    routes = sorted(
        domain.routes.select_related("worker"), key=lambda r: len(r.prefix), reverse=True
    )
    return {
        "portal": False,
        "routes": [{"prefix": r.prefix, "host": worker_host(r.worker.name, domain.tenant.slug)}
                   for r in routes],
    }  # fmt: skip


def routes_for(hostname: str) -> list[dict] | None:
    """The worker routes a verified domain serves; None when it serves none (not a verified
    domain of an active tenant)."""
    found = serves(hostname)
    return None if found is None else found["routes"]


def may_have_certificate(hostname: str) -> bool:
    """The edge's question before it gets a certificate for a name: a verified domain of an
    active tenant, the portal's names, or a worker's or deployment's host that exists."""
    name = hostname.lower().rstrip(".")
    if serves(name) is not None:
        return True
    if name in {h.lower() for h in settings.PLATFORM_HOSTS if not h.startswith(".")}:
        return True
    suffix = f".{settings.RUNTIME_DOMAIN}"
    if name.endswith(suffix):
        address = parse(name[: -len(suffix)])
        if address is not None:
            found = Worker.objects.filter(name=address.worker, tenant__slug=address.tenant)
            if address.deployment is not None:
                found = found.filter(deployments__short_id=address.deployment)
            return found.exists()
    return False
