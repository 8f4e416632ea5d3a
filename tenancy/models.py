"""Tenancy: tenants and the users who are members of them, with a role each, what they did
(the audit log), and what happened to their things, sent to their own systems (events)."""

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from .limits import RuntimeLimits

# Lowercase DNS-label pieces; "--" is reserved as the separator in runtime host names.
LABEL_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
label_validator = RegexValidator(
    LABEL_PATTERN,
    "Use lowercase letters, digits and single hyphens; start and end with a letter or digit.",
)


class TenantScopedQuerySet(models.QuerySet):
    def visible_to(self, principal):
        """The one scoping path: rows of the tenants the principal (tenancy.access)
        belongs to; everything else is a 404."""
        return self.filter(tenant_id__in=principal.tenant_ids)


class Tenant(RuntimeLimits):
    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"

    slug = models.CharField(max_length=20, unique=True, validators=[label_validator])
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    require_second_factor = models.BooleanField(
        default=False, help_text="Its members sign in with a second factor (set by its owners)."
    )
    require_single_sign_on = models.BooleanField(
        default=False,
        help_text="Its members act in it only when signed in through its own identity provider.",
    )
    log_retention_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Days console lines are kept; empty for the default."
    )
    # Quotas, set by operators; empty means the platform's default (settings QUOTA_*).
    max_workers = models.PositiveIntegerField(null=True, blank=True)
    max_deployments_per_hour = models.PositiveIntegerField(null=True, blank=True)
    max_invocations_per_minute = models.PositiveIntegerField(null=True, blank=True)
    max_payload_bytes = models.PositiveIntegerField(null=True, blank=True)
    max_schedules = models.PositiveIntegerField(null=True, blank=True)
    max_api_keys = models.PositiveIntegerField(null=True, blank=True, help_text="Not revoked.")
    max_drains = models.PositiveIntegerField(null=True, blank=True)
    max_event_subscriptions = models.PositiveIntegerField(null=True, blank=True)
    max_domains = models.PositiveIntegerField(null=True, blank=True)
    max_settings = models.PositiveIntegerField(null=True, blank=True, help_text="All workers'.")
    max_kv_namespaces = models.PositiveIntegerField(null=True, blank=True)
    max_kv_keys = models.PositiveIntegerField(null=True, blank=True, help_text="All namespaces'.")
    max_kv_bytes = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Keys, values and metadata of all namespaces."
    )
    max_kv_operations_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Workers' key-value operations that reach storage."
    )
    max_enqueues_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Runs workers' code enqueues (ctx.enqueue)."
    )
    max_secrets = models.PositiveIntegerField(null=True, blank=True, help_text="All workers'.")
    max_waiting_runs = models.PositiveIntegerField(
        null=True, blank=True, help_text="Runs queued or waiting to retry, all workers'."
    )
    max_stored_payload_bytes = models.PositiveIntegerField(
        null=True, blank=True, help_text="A stored run's or a schedule's payload."
    )
    backend = models.CharField(
        max_length=16,
        blank=True,
        choices=[("local", "local (this platform's runtime)"), ("vercel", "Vercel")],
        help_text="Where this tenant's deployments run; blank for the platform's default.",
    )
    # White-label: what this tenant's members see instead of the platform's brand.
    brand_name = models.CharField(max_length=100, blank=True)
    brand_logo_url = models.URLField(blank=True)
    brand_color = models.CharField(
        max_length=7, blank=True, validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use #rrggbb.")]
    )
    support_email = models.EmailField(blank=True)
    custom_domain = models.CharField(
        max_length=253, null=True, blank=True, unique=True,
        help_text="A host name that serves this tenant's portal under its brand.",
    )  # fmt: skip
    # Counts the changes of what its workers' production URLs serve (promotions, rollbacks,
    # canaries, releases): a call made within one generation sees only that generation.
    generation = models.PositiveBigIntegerField(default=0, editable=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "workers_portal_tenant"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"  # two tenants may share a name, never a slug

    def quota(self, name: str) -> int:
        """This tenant's limit, or the platform default."""
        own = getattr(self, name)
        return own if own is not None else getattr(settings, f"QUOTA_{name.upper()}")


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        DEVELOPER = "developer"
        VIEWER = "viewer"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.DEVELOPER)
    # Event types (tenancy.events.TYPES) this member asked to be mailed about, in this tenant.
    notify = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "workers_portal_membership"
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="unique_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


class AuditEvent(models.Model):
    """Who did what, when and from where, in a tenant. Append-only, also in the database
    (a trigger refuses updates and deletes, migration 0007): events outlive their tenant
    (kept under its slug), and their export is the only way out."""

    tenant = models.ForeignKey(
        Tenant, models.DO_NOTHING, db_constraint=False, related_name="audit_events"
    )
    tenant_slug = models.CharField(max_length=50, blank=True, help_text="The tenant, as it was.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=200, help_text="The user or API key, as it was.")
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "workers_portal_auditevent"
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target}"

    def save(self, *args, **kwargs):
        if not self.tenant_slug and self.tenant_id:
            self.tenant_slug = self.tenant.slug
        super().save(*args, **kwargs)


class Invitation(models.Model):
    """An emailed invitation to join a tenant with a role; the token is the link's secret."""

    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Membership.Role.choices)
    token = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "workers_portal_invitation"
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.email} to {self.tenant} as {self.role}"

    @property
    def is_open(self) -> bool:
        """Neither accepted nor withdrawn, and not past its expiry."""
        expired = self.expires_at is not None and self.expires_at <= timezone.now()
        return self.accepted_at is None and self.withdrawn_at is None and not expired


class EventSubscription(models.Model):
    """A tenant's URL that receives the events it chose, signed as Standard Webhooks do."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        PAUSED = "paused"  # after repeated failures; resumed by a member

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="event_subscriptions")
    url = models.URLField(max_length=500)
    # `whsec_` and base64 of 32 random bytes: the key of the signatures (Standard Webhooks).
    secret = models.CharField(max_length=64, editable=False)
    types = models.JSONField(default=list, blank=True, help_text="Event types; empty for all.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    failures = models.PositiveIntegerField(default=0)  # attempts failed in a row
    last_error = models.CharField(max_length=500, blank=True)
    last_delivered_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(default=timezone.now)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["created"]

    def __str__(self) -> str:
        return f"{self.tenant.slug} -> {self.url}"

    def wants(self, event_type: str) -> bool:
        return not self.types or event_type in self.types


class Event(models.Model):
    """Something that happened in a tenant, kept while it has subscriptions to deliver it to."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="events")
    type = models.CharField(max_length=40)
    data = models.JSONField(default=dict)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.type} in {self.tenant_id} at {self.created:%Y-%m-%d %H:%M:%S}"

    @property
    def webhook_id(self) -> str:
        """The same on every attempt and redelivery: receivers drop what they have seen."""
        return f"evt_{self.code.hex}"


class Delivery(models.Model):
    """One event on its way to one subscription: its attempts' last answer, or the error."""

    class Status(models.TextChoices):
        PENDING = "pending"  # to be sent (again) at next_attempt_at
        DELIVERED = "delivered"
        FAILED = "failed"  # attempts spent; a member may redeliver

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    subscription = models.ForeignKey(EventSubscription, models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, models.CASCADE, related_name="deliveries")
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    answer = models.CharField(max_length=500, blank=True, help_text="The answer's start.")
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event} to {self.subscription_id}: {self.status}"
