# Audit events become append-only in the database and outlive their tenant.

import django.db.models.deletion
from django.db import migrations, models

TABLE = "workers_portal_auditevent"
COLUMNS = ("id", "tenant_id", "tenant_slug", "actor_label", "action", "target", "details", "ip", "created")  # fmt: skip

# Nothing may change or delete an event, except that deleting a user forgets which user it
# was (actor_id becomes NULL; actor_label keeps who it was). TRUNCATE, a database owner's
# deliberate act, is not refused.
POSTGRES = f"""
CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL
     AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
    MESSAGE = 'audit events are append-only: ' || TG_OP || ' refused';
END $$;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON {TABLE}
  FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
"""
SQLITE_SAME = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in COLUMNS)
SQLITE = [
    f"""CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON {TABLE}
    WHEN NOT (NEW.actor_id IS NULL AND {SQLITE_SAME})
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END""",
    f"""CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused'); END""",
]


def fill_slugs(apps, schema_editor):
    AuditEvent = apps.get_model("workers_portal", "AuditEvent")
    Tenant = apps.get_model("workers_portal", "Tenant")
    for tenant in Tenant.objects.all():
        AuditEvent.objects.filter(tenant_id=tenant.pk).update(tenant_slug=tenant.slug)


def add_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE:
            schema_editor.execute(statement)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS audit_event_append_only ON {TABLE}")
        schema_editor.execute("DROP FUNCTION IF EXISTS audit_event_append_only()")
    elif schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        schema_editor.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")


class Migration(migrations.Migration):
    dependencies = [
        ("workers_portal", "0006_tenant_generation"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="tenant_slug",
            field=models.CharField(blank=True, help_text="The tenant, as it was.", max_length=50),
        ),
        migrations.RunPython(fill_slugs, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="auditevent",
            name="tenant",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="audit_events",
                to="workers_portal.tenant",
            ),
        ),
        migrations.RunPython(add_trigger, drop_trigger),
    ]
