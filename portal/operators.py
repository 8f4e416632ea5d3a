"""The operators' home: staff who open the portal see the platform, not a dead end."""

from datetime import timedelta

from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Count, Q
from django.shortcuts import render
from django.utils import timezone

from deployments.models import Deployment, Invocation
from workers_portal.models import Tenant

Status = Deployment.Status


@staff_member_required
def operators_home(request):
    now = timezone.now()
    day_ago = now - timedelta(days=1)
    tenants = Tenant.objects.annotate(
        worker_count=Count("workers", distinct=True),
        member_count=Count("memberships", distinct=True),
    ).order_by("name")
    waiting = Deployment.objects.filter(status__in=[Status.QUEUED, Status.BUILDING])
    oldest = waiting.order_by("created").values_list("created", flat=True).first()
    calls = Invocation.objects.filter(started_at__gte=day_ago).aggregate(
        total=Count("id"), failed=Count("id", filter=~Q(status=Invocation.Status.OK))
    )
    context = {
        "tenants": tenants,
        "suspended": tenants.filter(status=Tenant.Status.SUSPENDED).count(),
        "build_queue": waiting.count(),
        "oldest_build": oldest,
        "calls": calls,
        "failed_builds": Deployment.objects.filter(status=Status.ERROR, created__gte=day_ago)
        .select_related("worker", "tenant")
        .order_by("-created")[:20],
    }
    return render(request, "operators.html", context)
