"""Charts of requests, errors and latency, drawn here as SVG from the per-minute and per-hour
figures (telemetry.metrics): one request renders one chart, no script draws anything, and
HTMX refreshes it every 30 s or when another range is picked."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from deployments.models import Deployment
from telemetry.metrics import RANGES, Point, merged, percentile, series
from workers.models import Worker

from .access import visible

WIDTH, BARS_HEIGHT, LINES_HEIGHT = 600, 120, 90


def chart(
    deployment_ids: list[int] | None,
    range_name: str,
    url: str,
    title: str,
    tenant_id=None,
    points: list[Point] | None = None,
) -> dict:
    """What the chart partial draws: stacked bars (calls, errors in red) and p50/p95 lines
    (`points`: the series, when the caller has read it already)."""
    if range_name not in RANGES:
        range_name = "24h"
    if points is None:
        points = series(deployment_ids, range_name, tenant_id=tenant_id)
    points = from_first_call(points)
    n = max(1, len(points))
    step = WIDTH / n
    top = max((p.calls for p in points), default=0) or 1
    counts = merged(points)
    p95s = [p.percentile(95) for p in points]
    slowest = max((v for v in p95s if v is not None), default=0) or 1
    bars, p50_line, p95_line, dots, hovers = [], [], [], [], []
    for i, p in enumerate(points):
        x = i * step
        moment = local(p.start)
        p50 = p.percentile(50)
        ok_h = (p.calls - p.errors) / top * BARS_HEIGHT
        err_h = p.errors / top * BARS_HEIGHT
        # As text: the template would pass each number through localized formatting, a
        # tenth of the dashboard's time for a chart's 700 numbers.
        bars.append({
            "x": f"{x:.1f}", "w": f"{max(step - 1, 0.5):.1f}", "ok_y": f"{BARS_HEIGHT - ok_h - err_h:.1f}",
            "ok_h": f"{ok_h:.1f}", "err_y": f"{BARS_HEIGHT - err_h:.1f}",
            "err_h": f"{err_h:.1f}" if round(err_h, 1) else "",
            "title": f"{moment}: {p.calls} calls, {p.errors} errors",
        })  # fmt: skip
        for name, line, value in (("p50", p50_line, p50), ("p95", p95_line, p95s[i])):
            if value is not None:
                y = LINES_HEIGHT - value / slowest * (LINES_HEIGHT - 4)
                line.append(f"{x + step / 2:.1f},{y:.1f}")
                # A dot for each value (a lone minute draws no line), kept round by the CSS.
                dots.append({"name": name, "d": f"M{x + step / 2:.1f} {y:.1f}h0"})
        if p50 is not None:
            hovers.append({
                "x": f"{x:.1f}", "w": f"{step:.1f}",
                "title": f"{moment}: p50 {p50:.1f} ms, p95 {p95s[i]:.1f} ms",
            })  # fmt: skip
    calls = sum(p.calls for p in points)
    errors = sum(p.errors for p in points)
    return {
        "title": title, "url": url, "range": range_name, "ranges": list(RANGES),
        "width": WIDTH, "bars_height": BARS_HEIGHT, "lines_height": LINES_HEIGHT,
        "bars": bars, "p50_line": " ".join(p50_line), "p95_line": " ".join(p95_line),
        "calls": calls, "errors": errors, "error_rate": 100 * errors / calls if calls else 0,
        "timeouts": sum(p.timeouts for p in points), "top": top, "slowest": slowest,
        "cold_starts": sum(p.cold_starts for p in points),
        "p50": percentile(counts, 50), "p95": percentile(counts, 95), "p99": percentile(counts, 99),
        "first": points[0].start if points else None,
        "dots": dots, "hovers": hovers, "ticks": ticks(points, range_name),
        "as_of": timezone.now(),
    }  # fmt: skip


def local(moment) -> str:
    """A time in the user's zone, named (the zone the portal shows every time in)."""
    shown = timezone.localtime(moment)
    return shown.strftime("%Y-%m-%d %H:%M ") + (shown.tzname() or "")


def from_first_call(points: list[Point], keep: int = 12) -> list[Point]:
    """A young worker's chart starts shortly before its first call instead of showing a day
    of nothing with one thin bar at the end (at least `keep` intervals stay)."""
    first = next((i for i, p in enumerate(points) if p.calls), len(points))
    return points[max(0, min(first - 1, len(points) - keep)) :]


def ticks(points: list[Point], range_name: str) -> list[str]:
    """Three labels under the charts: the first interval, the middle one, the last, in the
    user's zone (hours and minutes; the day too for ranges of days)."""
    if not points:
        return []
    shape = "%H:%M" if range_name in ("1h", "24h") else "%b %d %H:%M"
    chosen = [points[0], points[len(points) // 2], points[-1]]
    return [timezone.localtime(p.start).strftime(shape) for p in chosen]


def worker_chart_context(worker: Worker, range_name: str, ids=None, points=None) -> dict:
    if ids is None:
        ids = list(worker.deployments.values_list("pk", flat=True))
    url = reverse("worker-chart", args=[worker.code])
    return chart(ids, range_name, url, f"{worker.name}, all deployments", points=points)


def deployment_charts(deployment: Deployment, range_name: str) -> list[dict]:
    """This deployment's chart, and the one of the deployment before it, side by side."""
    url = reverse("deployment-chart", args=[deployment.code])
    charts = [chart([deployment.pk], range_name, url, deployment.short_id)]
    before = (
        deployment.worker.deployments.filter(
            status=Deployment.Status.READY, created__lt=deployment.created
        )
        .order_by("-created")
        .first()
    )
    if before is not None:
        charts.append(chart([before.pk], range_name, url, f"{before.short_id} (the one before)"))
    return charts


def tenant_chart_context(tenant, range_name: str) -> dict:
    url = reverse("tenant-chart")
    return chart(None, range_name, url, f"{tenant.name}, all workers", tenant_id=tenant.pk)


@login_required
def worker_chart(request, code):
    worker = visible(request, Worker.objects.select_related("tenant"), code=code)
    context = {"chart": worker_chart_context(worker, request.GET.get("range", "24h"))}
    return render(request, "partials/chart.html", context)


@login_required
def deployment_chart(request, code):
    deployment = visible(request, Deployment.objects.select_related("worker", "tenant"), code=code)
    context = {"charts": deployment_charts(deployment, request.GET.get("range", "24h"))}
    return render(request, "partials/charts.html", context)


@login_required
def tenant_chart(request):
    if request.tenant is None:
        return redirect("dashboard")
    context = {"chart": tenant_chart_context(request.tenant, request.GET.get("range", "24h"))}
    return render(request, "partials/chart.html", context)
