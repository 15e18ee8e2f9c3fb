"""The libraries' admin pages (django-axes' sign-in logs, django-celery-beat's schedules),
shown to superusers only, in the reader's language: the columns and inline headers the
libraries leave without a translatable name are named here (their other words are translated
in the project's catalogue, which comes first)."""

from axes.admin import AccessAttemptAdmin
from cron_descriptor import (
    ExpressionDescriptor,
    FormatException,
    MissingFieldException,
    Options,
    WrongArgumentException,
)
from django.contrib import admin
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
    cronexp,
)

# django-axes' computed columns carry no description of their own (the admin would show their
# method names in English).
AccessAttemptAdmin.status.short_description = _("Status")
AccessAttemptAdmin.expiration.short_description = _("Expires At")

# django-celery-beat's model properties shown as columns and read-only fields.
PeriodicTask.scheduler.fget.short_description = _("Schedule")


class PeriodicTaskInline(beat_admin.PeriodicTaskInline):
    """The tasks a schedule runs, as the library lists them, with the task's header named in
    the reader's language (the library's model names it in English only)."""

    fields = ("name", "task_name", "args", "kwargs")
    readonly_fields = fields

    @admin.display(description=_("task"))
    def task_name(self, task):
        return task.task


for schedule in (ClockedSchedule, CrontabSchedule, IntervalSchedule, SolarSchedule):
    admin.site.get_model_admin(schedule).inlines = [PeriodicTaskInline]


def crontab_description(crontab: CrontabSchedule) -> str:
    """The library's ``human_readable`` ("At 02:30 AM"), in the reader's language and on the
    24-hour clock, followed by the time zone (cron_descriptor's own catalogues)."""
    expression = " ".join(
        cronexp(getattr(crontab, part))
        for part in ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
    )
    options = Options()
    options.locale_code = "zh_CN" if (get_language() or "").startswith("zh") else "en_US"
    options.use_24hour_time_format = True
    try:
        description = ExpressionDescriptor(expression, options).get_description()
    except (MissingFieldException, FormatException, WrongArgumentException):
        description = expression
    return f"{description} {crontab.timezone}"


crontab_description.short_description = _("Description")
CrontabSchedule.human_readable = property(crontab_description)
