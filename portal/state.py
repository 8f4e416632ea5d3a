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
    """The Overview's live parts as they are now, and the fingerprint of them."""
    recent = list(worker.deployments.select_related("tenant", "worker")[:RECENT])
    latest = recent[0] if recent else None
    production = worker.production
    show_latest = asked_latest or production is None
    focus = latest if show_latest else production
    pending = secrets_changed_since(production) if production is not None else []
    seen = fingerprint(
        worker_parts(worker),
        [(d.pk, d.status) for d in recent],
        pending,
        focus.pk if focus else None,
        focus.status if focus else None,
    )
    return {
        "worker": worker,
        "recent": recent,
        "latest": latest,
        "focus": focus,
        "focus_is": "latest" if show_latest else "production",
        "pending_secrets": pending,
        "canary_sides": canary_metrics(worker),
        "canary_steps": canary_steps(worker),
        "seen": seen,
        "state_url": reverse("worker-state", args=[worker.code])
        + "?"
        + urlencode(
            {
                "seen": seen,
                "focus": focus_token(focus),
                **({"show": "latest"} if asked_latest else {}),
            }
        ),
    }


def deployment_state_url(deployment: Deployment) -> str:
    seen = fingerprint(deployment.status, worker_parts(deployment.worker))
    query = urlencode({"seen": seen})
    return reverse("deployment-state", args=[deployment.code]) + "?" + query
