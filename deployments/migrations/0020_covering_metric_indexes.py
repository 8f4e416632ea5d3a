from django.db import migrations

# Charts add up a range of minutes of some deployments or of a tenant. Those rows are spread
# over the table (every deployment writes its minute at once), so reading them was one heap
# page a row (45 ms for a busy worker's day); these indexes hold what the charts read, and
# Postgres answers from them alone. Postgres only: SQLite has no INCLUDE, and small tables.
INDEXES = {
    "metric_chart": ("deployments_metric", "deployment_id, period, start",
                     "calls, errors, timeouts, cold_starts"),
    "metricbucket_chart": ("deployments_metricbucket", "deployment_id, period, start",
                           "bucket, count"),
    "tenantmetric_chart": ("deployments_tenantmetric", "tenant_id, period, start",
                           "calls, errors, timeouts, cold_starts"),
    "tenantmetricbucket_chart": ("deployments_tenantmetricbucket", "tenant_id, period, start",
                                 "bucket, count"),
}  # fmt: skip


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, (table, key, included) in INDEXES.items():
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({key}) INCLUDE ({included})"
            )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("deployments", "0019_tenant_minutes")]

    operations = [migrations.RunPython(create, drop)]
