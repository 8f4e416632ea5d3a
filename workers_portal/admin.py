from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.utils import timezone

from .access import ROLE_ACTIONS
from .audit import record
from .models import AuditEvent, Membership, Tenant


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    readonly_fields = ["may"]

    @admin.display(description="may")
    def may(self, membership):
        return role_may(membership)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "status",
        "backend_name",
        "workers",
        "deployments_last_hour",
        "invocations_last_day",
        "created",
    ]
    list_filter = ["status", "backend"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]
    # What people fill first comes first; limits and quotas default to the platform's.
    fieldsets = [
        (None, {"fields": ["slug", "name", "status", "backend"]}),
        (
            "Brand",
            {
                "fields": [
                    "brand_name",
                    "brand_logo_url",
                    "brand_color",
                    "support_email",
                    "custom_domain",
                ]
            },
        ),  # fmt: skip
        (
            "Quotas (blank: the platform's default)",
            {
                "fields": [
                    "max_workers",
                    "max_deployments_per_hour",
                    "max_invocations_per_minute",
                    "max_payload_bytes",
                    "log_retention_days",
                ]
            },
        ),  # fmt: skip
        (
            "Runtime limits (blank: the platform's default)",
            {
                "fields": [
                    "timeout_seconds",
                    "cpu_ms",
                    "memory_mb",
                    "max_concurrency",
                    "max_result_bytes",
                    "max_log_lines",
                    "max_line_bytes",
                ]
            },
        ),  # fmt: skip
    ]

    @admin.display(description="back end")
    def backend_name(self, tenant):
        return tenant.backend or f"{settings.DEFAULT_BACKEND} (default)"

    # Usage at a glance for operators; each against the tenant's quota where it has one.
    @admin.display(description="workers")
    def workers(self, tenant):
        return f"{tenant.workers.count()} / {tenant.quota('max_workers')}"

    @admin.display(description="deployments, last hour")
    def deployments_last_hour(self, tenant):
        since = timezone.now() - timedelta(hours=1)
        return f"{tenant.deployments.filter(created__gte=since).count()} / {tenant.quota('max_deployments_per_hour')}"

    @admin.display(description="invocations, last 24 h")
    def invocations_last_day(self, tenant):
        return tenant.invocations.filter(started_at__gte=timezone.now() - timedelta(days=1)).count()

    actions = ["suspend", "resume"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        record(request, obj, "tenant.change" if change else "tenant.create", obj.slug,
               fields=form.changed_data)  # fmt: skip

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        if formset.has_changed():
            record(request, form.instance, "member.change", form.instance.slug)

    @admin.action(description="Suspend the selected tenants (their URLs stop within seconds)")
    def suspend(self, request, queryset):
        for tenant in queryset.filter(status=Tenant.Status.ACTIVE):
            Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)
            record(request, tenant, "tenant.suspend", tenant.slug)

    @admin.action(description="Resume the selected tenants")
    def resume(self, request, queryset):
        for tenant in queryset.filter(status=Tenant.Status.SUSPENDED):
            Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.ACTIVE)
            record(request, tenant, "tenant.resume", tenant.slug)


def role_may(membership) -> str:
    """What the role allows, from the one table the portal and the API use too."""
    return ", ".join(sorted(ROLE_ACTIONS[membership.role])) if membership.role else ""


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "may", "created"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__username", "user__email", "tenant__name", "tenant__slug"]
    autocomplete_fields = ["user", "tenant"]
    readonly_fields = ["may"]

    @admin.display(description="may")
    def may(self, membership):
        return role_may(membership)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        record(
            request,
            obj.tenant,
            "member.change" if change else "member.add",
            str(obj.user),
            role=obj.role,
        )

    def delete_model(self, request, obj):
        record(request, obj.tenant, "member.remove", str(obj.user))
        super().delete_model(request, obj)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Written by the platform: read-only for operators too."""

    list_display = ["created", "tenant", "actor_label", "action", "target", "ip"]
    list_filter = ["action", "tenant"]
    search_fields = ["actor_label", "target", "tenant__slug"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
