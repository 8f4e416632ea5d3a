"""Template tags that ask the one access path and a deployment's back end, so templates
neither copy the role table nor ask which back end they show."""

from django import template

from deployments.backends import backend_for_worker
from workers_portal import access

register = template.Library()


@register.simple_tag(takes_context=True)
def can(context, action: str, obj) -> bool:
    """{% can "deploy" deployment as may_deploy %}: the role in the object's own tenant."""
    return access.can(context["request"].principal, action, obj)


@register.simple_tag
def progress(deployment) -> str:
    return deployment.runs_on.progress(deployment)


@register.simple_tag
def curl_line(deployment, show_secret: bool) -> str:
    function = deployment.functions[0] if deployment.functions else "<function>"
    return deployment.runs_on.curl(deployment, function, bool(show_secret))


@register.simple_tag
def plain_url(deployment) -> str | None:
    return deployment.runs_on.plain_host_url(deployment)


@register.simple_tag
def production_url(worker) -> str:
    return backend_for_worker(worker).production_url(worker)


@register.simple_tag
def production_plain_url(worker) -> str | None:
    return backend_for_worker(worker).plain_host_url(worker)
