"""Charts of requests, errors and latency, drawn here as SVG from the per-minute and per-hour
figures (deployments.metrics): one request renders one chart, no script draws anything, and
HTMX refreshes it every 30 s or when another range is picked."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse

from deployments.metrics import RANGES, Point, merged, percentile, series
from deployments.models import Deployment
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
    n = max(1, len(points))
    step = WIDTH / n
    top = max((p.calls for p in points), default=0) or 1
    counts = merged(points)
    p95s = [p.percentile(95) for p in points]
    slowest = max((v for v in p95s if v is not None), default=0) or 1
    bars, p50_line, p95_line = [], [], []
    for i, p in enumerate(points):
        x = i * step
        ok_h = (p.calls - p.errors) / top * BARS_HEIGHT
        err_h = p.errors / top * BARS_HEIGHT
        # As text: the template would pass each number through localized formatting, a
        # tenth of the dashboard's time for a chart's 700 numbers.
        bars.append({
            "x": f"{x:.1f}", "w": f"{max(step - 1, 0.5):.1f}", "ok_y": f"{BARS_HEIGHT - ok_h - err_h:.1f}",
            "ok_h": f"{ok_h:.1f}", "err_y": f"{BARS_HEIGHT - err_h:.1f}",
            "err_h": f"{err_h:.1f}" if round(err_h, 1) else "",
            "title": f"{p.start:%Y-%m-%d %H:%M} UTC: {p.calls} calls, {p.errors} errors",
        })  # fmt: skip
        for line, value in ((p50_line, p.percentile(50)), (p95_line, p95s[i])):
            if value is not None:
                y = LINES_HEIGHT - value / slowest * (LINES_HEIGHT - 4)
                line.append(f"{x + step / 2:.1f},{y:.1f}")
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
    }  # fmt: skip


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
