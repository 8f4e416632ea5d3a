"""One truth per page: a worker's Overview and a deployment's page ask every few seconds
whether what they show about the worker changed (a promote or rollback in another tab, a
canary step or its rollback, a deploy from the API, a secret changed). Nothing changed:
204, and HTMX leaves the page alone. Something did: every part that shows it comes back
together, swapped out of band, so no two parts of a page disagree.

The question carries a fingerprint of what the page was drawn from; the answer compares
it with one computed now. The invoke form is redrawn only when the deployment it calls
changes, so a payload being typed is not lost to a canary step."""

import hashlib

from django.urls import reverse
from django.utils.http import urlencode

from deployments.deploy import secrets_changed_since
from deployments.models import Deployment
from releases.production import canary_metrics, canary_steps
from workers.models import Worker

RECENT = 5


def fingerprint(*parts) -> str:
    return hashlib.blake2s(repr(parts).encode(), digest_size=8).hexdigest()


def worker_parts(worker: Worker) -> tuple:
    """What the worker's panels are drawn from (production, canary, visibility, secrets)."""
    return (
        worker.production_id,
        worker.production_since,
        worker.promoted_by,
        worker.public,
        worker.auto_promote,
        worker.alias_target_id,
        worker.alias_error,
        worker.canary_id,
        worker.canary_percent,
        worker.canary_since,
        worker.canary_note,
    )


def focus_token(focus: Deployment | None) -> str:
    return f"{focus.code}.{focus.status}" if focus is not None else ""


def overview_state(worker: Worker, asked_latest: bool) -> dict:
    """What the Overview is drawn from that the question compares, and its fingerprint:
    cheap, as the question comes every 3 s from every open page (secrets by name and date,
    not decrypted)."""
    recent = list(worker.deployments.select_related("tenant", "worker")[:RECENT])
    latest = recent[0] if recent else None
    show_latest = asked_latest or worker.production is None
    focus = latest if show_latest else worker.production
    seen = fingerprint(
        worker_parts(worker),
        [(d.pk, d.status) for d in recent],
        list(worker.secrets.values_list("name", "updated")),
        focus_token(focus),
    )
    query = {"seen": seen, "focus": focus_token(focus)}
    if asked_latest:
        query["show"] = "latest"
    return {
        "worker": worker,
        "recent": recent,
        "latest": latest,
        "focus": focus,
        "focus_is": "latest" if show_latest else "production",
        "seen": seen,
        "state_url": reverse("worker-state", args=[worker.code]) + "?" + urlencode(query),
    }


def overview_parts(worker: Worker) -> dict:
    """What only drawing the Overview needs (not the question): the secrets production
    lacks and the canary's figures."""
    production = worker.production
    return {
        "pending_secrets": secrets_changed_since(production) if production is not None else [],
        "canary_sides": canary_metrics(worker),
        "canary_steps": canary_steps(worker),
    }


def deployment_seen(deployment: Deployment) -> str:
    """A deployment page's fingerprint: its status and its worker's production and canary."""
    return fingerprint(deployment.status, worker_parts(deployment.worker))


def deployment_state_url(deployment: Deployment) -> str:
    query = urlencode({"seen": deployment_seen(deployment)})
    return reverse("deployment-state", args=[deployment.code]) + "?" + query
