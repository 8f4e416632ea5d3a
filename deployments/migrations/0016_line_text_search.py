from django.db import migrations

TRIGRAM_INDEX = "deployments_logentry_message_trigrams"


def create(apps, schema_editor):
    """On Postgres, a trigram index on the lines' text: a search for a word among millions of
    lines reads the index instead of every line (SQLite scans; its tables are small). On
    upper(message), the expression Django's case-blind `icontains` compares."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON deployments_logentry "
            "USING gin (upper(message) gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")


class Migration(migrations.Migration):
    dependencies = [("deployments", "0015_lines_in_metrics")]

    operations = [migrations.RunPython(create, drop)]
