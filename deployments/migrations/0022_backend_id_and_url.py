"""Deployment.deployment_id/deployment_url -> backend_id/backend_url: one name per thing
(`deployment_id` is a foreign key's column on every other table)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("deployments", "0021_cpu_usage")]

    operations = [
        migrations.RenameField("deployment", "deployment_id", "backend_id"),
        migrations.RenameField("deployment", "deployment_url", "backend_url"),
        migrations.AlterField(
            "deployment", "backend_id", models.CharField(max_length=100, blank=True)
        ),
        migrations.AlterField(
            "deployment", "backend_url", models.CharField(max_length=300, blank=True)
        ),
    ]
