from django.contrib import admin

from .models import Worker


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "production", "created"]
    list_filter = ["tenant"]
    search_fields = ["name", "tenant__slug", "tenant__name", "code"]
    readonly_fields = ["code", "created"]
    raw_id_fields = ["production"]
