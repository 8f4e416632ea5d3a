"""Schedules: cron expressions in a time zone (croniter does the arithmetic, daylight saving
time included) that start runs of a function.

The rule after an outage (the control plane, beat or every Celery worker down): a schedule
whose firings were missed fires ONCE when it is next looked at, for the latest missed
firing, and then keeps its rhythm from the present; the earlier missed firings are counted
(`missed`) and shown, never run. A paused schedule, or one of a suspended tenant, does not
fire and does not catch up: its next firing is the first one after it may run again.
"""

import json
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterBadCronError, croniter
from django.db import transaction
from django.utils import timezone

from tenancy.access import acts
from tenancy.models import Tenant
from tenancy.quotas import QuotaExceeded, check_room, check_stored_payload

from .lifecycle import accept
from .models import Run, Schedule

UTC = ZoneInfo("UTC")


class ScheduleError(ValueError):
    """Why a schedule cannot be saved, for people."""


def check(cron: str, time_zone: str, payload: str) -> None:
    if len(cron) > 100 or not croniter.is_valid(cron):
        raise ScheduleError(
            f"{cron!r} is not a cron expression: five fields, minute hour day-of-month "
            "month day-of-week, e.g. */5 * * * * (every five minutes) or 0 9 * * 1-5."
        )
    if len(cron.split()) != 5:
        raise ScheduleError("Use five fields: minute hour day-of-month month day-of-week.")
    if time_zone not in available_timezones():
        raise ScheduleError(f"{time_zone!r} is not a time zone name (e.g. Europe/Paris, UTC).")
    try:
        json.loads(payload)
    except ValueError as exc:
        raise ScheduleError(f"The payload is not valid JSON: {exc}") from exc


def check_quota(tenant: Tenant, payload: str) -> None:
    """A new schedule fits the tenant's quota of schedules, its payload the stored-payload
    quota; QuotaExceeded (409, 413) if not."""
    check_room(tenant, "max_schedules")
    check_stored_payload(tenant, payload)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def next_firings(schedule: Schedule, after: datetime | None = None, count: int = 1) -> list:
    """The next `count` firing times after `after` (default now), in UTC."""
    start = (after or timezone.now()).astimezone(zone(schedule.time_zone))
    try:
        times = croniter(schedule.cron, start)
        return [times.get_next(datetime).astimezone(UTC) for _ in range(count)]
    except (CroniterBadCronError, ValueError):
        return []


def arm(schedule: Schedule) -> None:
    """Its next firing from now (on create, resume and edit)."""
    upcoming = next_firings(schedule)
    schedule.next_fire_at = upcoming[0] if upcoming else None


def fire_due(now: datetime | None = None) -> int:
    """Start a run for each schedule that is due; the number started."""
    now = now or timezone.now()
    started = 0
    with transaction.atomic():
        due = (
            Schedule.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("worker__production", "tenant")
            .filter(paused=False, next_fire_at__lte=now)[:500]
        )
        for schedule in due:
            missed = 0
            following = next_firings(schedule, after=now)
            # Firings between the one due and now were missed (an outage): counted, not run.
            for when in next_firings(schedule, after=schedule.next_fire_at, count=1000):
                if when > now:
                    break
                missed += 1
            schedule.next_fire_at = following[0] if following else None
            schedule.missed += missed
            production = schedule.worker.production
            if acts(schedule.tenant) and production is not None:
                try:
                    accept(production, schedule.function, schedule.payload, Run.Trigger.CRON,
                           schedule=schedule)  # fmt: skip
                except QuotaExceeded:
                    schedule.missed += 1  # the tenant's waiting runs are at their quota
                else:
                    schedule.last_fired_at = now
                    started += 1
            schedule.save(update_fields=["next_fire_at", "missed", "last_fired_at"])
    return started
