"""Template tags that ask the one access path and a deployment's back end, so templates
neither copy the role table nor ask which back end they show."""

import functools
import shlex
from urllib.parse import quote

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from deployments.backends import backend_for_worker
from tenancy import access

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
def api_curl(request, secret: str) -> str:
    """A first deploy through the JSON API with a new key, ready to paste into a shell."""
    body = '{"name": "hello", "code": "export async function hi(p: unknown) { return 1 }"}'
    return shlex.join(
        ["curl", "-X", "POST", request.build_absolute_uri("/api/workers"),
         "-H", f"Authorization: Bearer {secret}", "-H", "content-type: application/json",
         "-d", body]
    )  # fmt: skip


@register.simple_tag
def plain_url(deployment) -> str | None:
    return deployment.runs_on.plain_host_url(deployment)


@register.simple_tag
def production_url(worker) -> str:
    return backend_for_worker(worker).production_url(worker)


@register.simple_tag
def production_plain_url(worker) -> str | None:
    return backend_for_worker(worker).plain_host_url(worker)


@register.filter
def as_of(moment):
    """How fresh a figure is: the time of day in the user's zone, the full time on hover."""
    if not moment:
        return ""
    local = timezone.localtime(moment)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        local.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S ") + (local.tzname() or ""),
        local.strftime("%H:%M:%S ") + (local.tzname() or ""),
    )


@register.filter
def when(moment):
    """One way to show a time: absolute in the user's zone, named, with the time since."""
    if not moment:
        return ""
    local = timezone.localtime(moment)
    since = timesince(moment) if moment <= timezone.now() else None
    relative = f"{since} ago" if since is not None else f"in {timesince(timezone.now(), moment)}"
    return format_html(
        '<time datetime="{}" title="{}">{}</time> <span class="muted">({})</span>',
        local.isoformat(),
        relative,
        local.strftime("%Y-%m-%d %H:%M:%S ") + (local.tzname() or ""),
        relative,
    )


@functools.cache
def invocation_prefix() -> str:
    return reverse("invocation", args=["-"]).removesuffix("-/")


LOG_LINE = """<div class="log-line level-{}" id="line-{}">
  {}
  <span class="lvl">{}</span>
  <span class="fn">{}</span>
  <a class="req" href="{}" title="{}">{}</a>
  <pre>{}</pre>
</div>"""


@register.simple_tag
def log_line(line):
    """One console line as the log pages show it, made here and not by an included template:
    a tail brings up to 500 lines at once, and the include with its URL and filters was most
    of the partial's time (bench/scale.py)."""
    return format_html(
        LOG_LINE, line.level, line.id, line_time(line.timestamp), line.level,
        line.function or "—", f"{invocation_prefix()}{quote(line.request_id, safe='')}/",
        line.request_id, line.request_id[:12], line.message,
    )  # fmt: skip


@register.simple_tag
def line_time(moment):
    """A log line's time in the user's zone: ISO in the attribute, with the zone in the title,
    to the millisecond in the text. strftime, not the `date` filter: a page shows 200 lines
    and the filter's three calls a line were a third of its rendering."""
    local = timezone.localtime(moment)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        local.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S.%f ") + (local.tzname() or ""),
        local.strftime("%H:%M:%S.%f")[:12],
    )


@register.filter
def get(mapping, key):
    """mapping[key] in a template, or None."""
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def lasted(start, end) -> str:
    """How long from start to end, to the unit that matters: "4 ms", "2.5 s", "3 min", "2 h"."""
    if not start or not end:
        return ""
    seconds = max(0.0, (end - start).total_seconds())
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
