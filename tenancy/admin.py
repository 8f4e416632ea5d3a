from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.db import models, transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from .access import ROLE_ACTIONS
from .audit import audit_csv, record
from .models import AuditEvent, Membership, Tenant
from .quotas import usage


class Record(admin.ModelAdmin):
    """A record the platform writes (deployments, artifacts, invocations, log lines, runs,
    usage, audit events): operators read it; nobody adds, changes or deletes one here. Only
    the platform's own retention removes such rows."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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
    # A logo's address typed without a scheme is read as https (Django 6's default).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
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
                    "quota_use",
                    "max_workers",
                    "max_deployments_per_hour",
                    "max_invocations_per_minute",
                    "max_payload_bytes",
                    "max_schedules",
                    "max_api_keys",
                    "max_drains",
                    "max_event_subscriptions",
                    "max_domains",
                    "max_settings",
                    "max_secrets",
                    "max_kv_namespaces",
                    "max_kv_keys",
                    "max_kv_bytes",
                    "max_kv_operations_per_minute",
                    "max_enqueues_per_minute",
                    "max_waiting_runs",
                    "max_stored_payload_bytes",
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

    readonly_fields = ["quota_use"]

    @admin.display(description="in use")
    def quota_use(self, tenant):
        """What the tenant holds against each quota, as the tenant sees it on its Usage page."""
        if tenant.pk is None:
            return "-"
        rows = [(u.name, "-" if u.used is None else u.used, u.limit) for u in usage(tenant, None)]
        return format_html_join(mark_safe("<br>"), "{}: {} of {}", rows)

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

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one tenant at a time, on its own page
        return actions

    def delete_view(self, request, object_id, extra_context=None):
        """Deleting a tenant takes all it made (workers, deployments, lines, runs, usage)
        along; its audit events stay. The operator types the slug to confirm, and the delete
        is itself an audit event."""
        tenant = get_object_or_404(Tenant, pk=object_id)
        counts = {
            "members": tenant.memberships.count(),
            "workers": tenant.workers.count(),
            "deployments": tenant.deployments.count(),
        }
        typed = request.POST.get("confirm", "") if request.method == "POST" else ""
        if request.method == "POST" and typed == tenant.slug:
            with transaction.atomic():
                record(request, tenant, "tenant.delete", tenant.slug, **counts)
                tenant.delete()
            self.message_user(request, f"Tenant {tenant.slug} and all it made are deleted.")
            return redirect("admin:tenancy_tenant_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Delete the tenant {tenant.name}?",
            "tenant": tenant,
            "counts": counts,
            "opts": self.model._meta,
            "typed": typed,
            "mistyped": request.method == "POST",
        }
        return render(
            request, "admin/tenant_delete.html", context, status=400 if context["mistyped"] else 200
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        record(request, obj, "tenant.change" if change else "tenant.create", obj.slug,
               fields=form.changed_data)  # fmt: skip

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        if formset.has_changed():
            record(request, form.instance, "member.change", form.instance.slug)

    def change_status(self, request, queryset, action: str, new: str, explanation: str):
        """Moves the selected tenants to `new` once the operator said yes on a page that
        names them and what follows; each move is audited."""
        tenants = list(queryset.exclude(status=new))
        if request.POST.get("confirmed") != "yes":
            context = {**self.admin_site.each_context(request), "tenants": tenants,
                       "action": action, "verb": action, "explanation": explanation,
                       "title": f"{action.capitalize()} tenants"}  # fmt: skip
            return TemplateResponse(request, "admin/tenant_status_confirm.html", context)
        for tenant in tenants:
            Tenant.objects.filter(pk=tenant.pk).update(status=new)
            record(request, tenant, f"tenant.{action}", tenant.slug)
        return None

    @admin.action(description="Suspend the selected tenants (their URLs stop within seconds)")
    def suspend(self, request, queryset):
        return self.change_status(
            request, queryset, "suspend", Tenant.Status.SUSPENDED,
            "Their workers stop answering within seconds and nothing in them can be changed, "
            "deployed or invoked until they are resumed; nothing is deleted.",
        )  # fmt: skip

    @admin.action(description="Resume the selected tenants")
    def resume(self, request, queryset):
        return self.change_status(
            request, queryset, "resume", Tenant.Status.ACTIVE,
            "Their workers answer again within seconds, with what they served before the "
            "suspension.",
        )  # fmt: skip


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
class AuditEventAdmin(Record):
    """Append-only (the database refuses changes too); the export is the way out."""

    list_display = ["created", "tenant_slug", "actor_label", "action", "target", "ip"]
    list_filter = ["action", "tenant_slug"]
    search_fields = ["actor_label", "target", "tenant_slug"]
    exclude = ["tenant", "actor"]  # shown as they were: tenant_slug, actor_label
    actions = ["export_csv"]

    @admin.action(description="Export the selected events as CSV")
    def export_csv(self, request, queryset):
        return audit_csv(queryset, "audit-events.csv")
