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
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import CrontabSchedule, PeriodicTask, cronexp

# django-axes' computed columns carry no description of their own (the admin would show their
# method names in English).
AccessAttemptAdmin.status.short_description = _("Status")
AccessAttemptAdmin.expiration.short_description = _("Expires At")

# django-celery-beat's model properties shown as columns and read-only fields.
PeriodicTask.scheduler.fget.short_description = _("Schedule")


# PeriodicTask.task is named "Task Name" without a translation (the inline headers, the list
# filter, the audit trail's field names): the same name, translatable (migrations compare the
# untranslated text, so they see no change).
PeriodicTask._meta.get_field("task").verbose_name = _("Task Name")
beat_admin.PeriodicTaskAdmin.crontab_translation.short_description = _("Description")


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
