"""Scheduled runs (reconciliation, rollover, statements) with their findings, their chunks (who
holds which piece of a run shared by several workers, and whose claim has expired), the
statements they produced, and the schedules themselves (django-celery-beat's, guarded, the
defaults' names and descriptions in the reader's language: ``ledger.schedule_words``)."""

import datetime as dt

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django_celery_beat import admin as beat_admin
from django_celery_beat.admin import PeriodicTaskAdmin as BeatPeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from accounts.admin_scope import FacilityScopedAdmin
from commissary.money import format_fen

from .. import schedule_words
from ..models import (
    BatchChunk,
    ReconciliationFinding,
    ScheduledRun,
    Statement,
)
from ..tasks import reconcile_ledger
from .base import NoWrites, ReadOnlyAdmin


class FindingInline(FacilityScopedAdmin, admin.TabularInline):
    include_global = True  # findings about the whole ledger belong to no facility
    model = ReconciliationFinding
    fields = ("check_name", "facility", "subject", "expected", "actual")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


def _claims_expired_before(now: dt.datetime) -> dt.datetime:
    """A claim taken before this has expired: any worker may take the chunk over
    (``ledger.chunks.claim_next``, the same setting)."""
    return now - dt.timedelta(seconds=settings.LEDGER_CHUNK_CLAIM_SECONDS)


def _chunk_count(**lookups):
    """How many of the run's chunks match ``lookups``."""
    return Coalesce(
        Subquery(
            BatchChunk.objects.filter(run=OuterRef("pk"), **lookups)
            .order_by()
            .values("run")
            .annotate(count=Count("pk"))
            .values("count")
        ),
        0,
    )


class ChunkInline(NoWrites, FacilityScopedAdmin, admin.TabularInline):
    """A run's chunks as they stand, read-only: nobody edits, adds or deletes one here (the
    workers' claims and their exactly-once marks are ``ledger.chunks``'s alone). Shown to whoever
    may view the run."""

    facility_field = "run__facility"
    include_global = True  # a reconciliation of the whole ledger belongs to no facility
    model = BatchChunk
    fields = (
        "number",
        "covers",
        "size",
        "state",
        "attempt",
        "worker",
        "claimed_at",
        "claim",
        "finished_at",
        "error",
    )
    readonly_fields = fields
    ordering = ("number",)
    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("ledger.view_scheduledrun")

    @admin.display(description=_("covers"))
    def covers(self, chunk):
        if chunk.label:
            return chunk.label
        return gettext("inmate ids %(low)s < id ≤ %(high)s") % {
            "low": chunk.low_id,
            "high": chunk.high_id,
        }

    @admin.display(description=_("claim"))
    def claim(self, chunk):
        if chunk.state != BatchChunk.State.CLAIMED or chunk.claimed_at is None:
            return "—"
        now = timezone.now()
        expires_at = chunk.claimed_at + dt.timedelta(seconds=settings.LEDGER_CHUNK_CLAIM_SECONDS)
        if expires_at <= now:
            return format_html(
                '<strong class="chunk-claim-expired">{}</strong>',
                gettext("Expired %(ago)s ago: another worker may take it over")
                % {"ago": timesince(expires_at, now)},
            )
        return gettext("Held for %(held)s, expires in %(left)s") % {
            "held": timesince(chunk.claimed_at, now),
            "left": timeuntil(expires_at, now),
        }


@admin.register(ScheduledRun)
class ScheduledRunAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "kind",
        "facility",
        "month",
        "status",
        "progress",
        "counts_shown",
        "chunk_states",
        "trigger_shown",
        "finished_at",
    )
    list_filter = ("kind", "status", "facility")
    date_hierarchy = "started_at"
    include_global = True  # a reconciliation of the whole ledger belongs to no facility
    readonly_fields = ("chunk_states", "trigger_shown", "counts_shown")
    inlines = [FindingInline, ChunkInline]
    # What started a run and what it counted, stored as codes, shown in words.
    TRIGGERS = {"schedule": _("on its schedule"), "manual": _("by hand")}
    COUNTS = {
        "findings": _("findings"),
        "statements": _("statements"),
        "periods_closed": _("periods closed"),
        "periods_opened": _("periods opened"),
        "deposits_expired": _("deposits expired"),
    }
    MODES = {"screened": _("screened"), "exact": _("every exact query")}

    def get_fields(self, request, obj=None):
        shown = {"trigger": "trigger_shown", "counts": "counts_shown"}
        names = [shown.get(name, name) for name in super().get_fields(request, obj)]
        return list(dict.fromkeys(names))  # each once: the shown fields are read-only too

    @admin.display(description=_("trigger"), ordering="trigger")
    def trigger_shown(self, run):
        return self.TRIGGERS.get(run.trigger, run.trigger)

    @admin.display(description=_("counts"))
    def counts_shown(self, run):
        counts = dict(run.counts or {})
        mode = counts.pop("mode", None)
        parts = [f"{self.COUNTS.get(key, key)}: {value}" for key, value in sorted(counts.items())]
        if mode is not None:  # last, whatever order the database keeps the keys in
            parts.append(gettext("mode: %(mode)s") % {"mode": self.MODES.get(mode, mode)})
        return "; ".join(parts) or "-"

    change_list_template = "admin/ledger/scheduledrun/change_list.html"

    def get_queryset(self, request):
        # The chunks' states counted in the same query as the runs, one small subquery each,
        # which PostgreSQL evaluates only for the page's runs.
        expired_before = _claims_expired_before(timezone.now())
        return (
            super()
            .get_queryset(request)
            .annotate(
                chunks_done=_chunk_count(state=BatchChunk.State.DONE),
                chunks_claimed=_chunk_count(state=BatchChunk.State.CLAIMED),
                chunks_expired=_chunk_count(
                    state=BatchChunk.State.CLAIMED, claimed_at__lt=expired_before
                ),
                chunks_waiting=_chunk_count(state=BatchChunk.State.PENDING),
                chunks_failed=_chunk_count(state=BatchChunk.State.FAILED),
            )
        )

    @admin.display(description=_("chunks"))
    def chunk_states(self, run):
        done = getattr(run, "chunks_done", None)
        if done is None:  # a run not read through get_queryset
            return "—"
        states = [
            (run.chunks_done, _("%(count)s done")),
            (run.chunks_claimed, _("%(count)s claimed")),
            (run.chunks_waiting, _("%(count)s waiting")),
            (run.chunks_failed, _("%(count)s failed")),
        ]
        if not any(count for count, _label in states):
            return "—"
        text = " · ".join(str(label % {"count": count}) for count, label in states if count)
        if run.chunks_expired:
            return format_html(
                '{} · <strong class="chunk-claim-expired">{}</strong>',
                text,
                ngettext("%(count)s claim expired", "%(count)s claims expired", run.chunks_expired)
                % {"count": run.chunks_expired},
            )
        return text

    @admin.display(description=_("progress"))
    def progress(self, run):
        if not run.progress_total:
            return "—"
        return f"{run.progress_done:,} / {run.progress_total:,}"

    def get_urls(self):
        return [
            path(
                "reconcile-now/",
                self.admin_site.admin_view(self.reconcile_now),
                name="ledger_scheduledrun_reconcile_now",
            ),
        ] + super().get_urls()

    def reconcile_now(self, request):
        """Queue a reconciliation run now (POST only); the worker records it like any other."""
        if request.method != "POST" or not request.user.has_perm("ledger.view_scheduledrun"):
            return HttpResponseNotAllowed(["POST"])

        if request.POST.get("exact") == "1":
            transaction.on_commit(lambda: reconcile_ledger.delay(trigger="manual", exact=True))
        else:
            transaction.on_commit(lambda: reconcile_ledger.delay(trigger="manual"))
        self.message_user(request, _("Reconciliation queued; it appears here when it has run."))
        return HttpResponseRedirect(reverse("admin:ledger_scheduledrun_changelist"))


@admin.register(Statement)
class StatementAdmin(ReadOnlyAdmin):
    list_display = ("inmate", "facility", "month", "opening", "closing", "downloads")
    list_filter = ("facility", "month")
    search_fields = ("inmate__inmate_number", "inmate__surname")
    list_select_related = ("inmate", "facility")
    exclude = ("html", "pdf")

    @admin.display(description=_("opening"))
    def opening(self, statement):
        return format_fen(statement.opening_fen)

    @admin.display(description=_("closing"))
    def closing(self, statement):
        return format_fen(statement.closing_fen)

    @admin.display(description=_("download"))
    def downloads(self, statement):
        return format_html(
            '<a href="{}">HTML</a> · <a href="{}">PDF</a>',
            reverse("admin:ledger_statement_download", args=[statement.pk, "html"]),
            reverse("admin:ledger_statement_download", args=[statement.pk, "pdf"]),
        )

    def get_queryset(self, request):
        return super().get_queryset(request).defer("html", "pdf")

    def get_urls(self):
        return [
            path(
                "<int:statement_id>/download.<str:kind>",
                self.admin_site.admin_view(self.download),
                name="ledger_statement_download",
            ),
        ] + super().get_urls()

    def download(self, request, statement_id, kind):
        if not self.has_view_permission(request):
            raise PermissionDenied
        if kind not in ("html", "pdf"):
            raise Http404
        statement = self.get_scoped_object_or_404(request, statement_id)
        name = f"statement-{statement.inmate_id}-{statement.month:%Y-%m}.{kind}"
        if kind == "pdf":
            response = HttpResponse(bytes(statement.pdf), content_type="application/pdf")
        else:
            response = HttpResponse(statement.html, content_type="text/html; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


def _shown_name(task: PeriodicTask) -> str:
    return schedule_words.shown_name(task.task, task.name)


_library_str = PeriodicTask.__str__


def _schedule_str(task: PeriodicTask) -> str:
    """The library's "name: schedule", the name in the reader's language (page titles,
    breadcrumbs, the delete confirmation)."""
    return _shown_name(task) + _library_str(task)[len(task.name) :]


PeriodicTask.__str__ = _schedule_str


class ScheduleForm(beat_admin.PeriodicTaskForm):
    """A default schedule's name and description are offered in the reader's language; sent
    back unchanged, they stay stored in their fixed wording (so the schedule stays a default,
    read in every language); changed, they are the person's own words."""

    WORDS = {"name": schedule_words.shown_name, "description": schedule_words.shown_description}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            return
        for field, shown in self.WORDS.items():
            stored = getattr(self.instance, field)
            if field in self.fields and (words := shown(self.instance.task, stored)) != stored:
                self.initial[field] = words

    def _stored(self, field: str) -> str:
        value = self.cleaned_data[field]
        if self.instance.pk is not None:
            stored = getattr(self.instance, field)
            if value == self.WORDS[field](self.instance.task, stored):
                return stored
        return value

    def clean_name(self):
        return self._stored("name")

    def clean_description(self):
        return self._stored("description")


class ScheduleInline(beat_admin.PeriodicTaskInline):
    """The schedules using a crontab or an interval, named in the reader's language."""

    fields = ("shown_name", "task", "args", "kwargs")
    readonly_fields = fields

    @admin.display(description=_("Name"))
    def shown_name(self, task):
        return _shown_name(task)


beat_admin.ScheduleAdmin.inlines = [ScheduleInline]


def _changing(action):
    """django-celery-beat's list actions declare no permission, so anyone who may only view
    the schedules could switch the nightly reconciliation off. Each needs "change", which
    only superusers hold (schedules are global)."""

    def guarded(modeladmin, request, queryset):
        return action(modeladmin, request, queryset)

    guarded.__name__ = action.__name__
    guarded.short_description = action.short_description
    guarded.allowed_permissions = ("change",)
    return guarded


admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class ScheduleAdmin(FacilityScopedAdmin, BeatPeriodicTaskAdmin):
    scope_global = True  # one set of schedules for every facility
    enable_tasks = _changing(BeatPeriodicTaskAdmin.enable_tasks)
    disable_tasks = _changing(BeatPeriodicTaskAdmin.disable_tasks)
    toggle_tasks = _changing(BeatPeriodicTaskAdmin.toggle_tasks)
    run_tasks = _changing(BeatPeriodicTaskAdmin.run_tasks)
    form = ScheduleForm
    list_display = tuple(
        {"name": "shown_name", "scheduler": "shown_schedule"}.get(column, column)
        for column in BeatPeriodicTaskAdmin.list_display
    )
    # The library's form template adds an inline script (the CSP blocks it) that would write
    # the cron's description under the crontab field after an English "Translation:"; the
    # read-only description field shows it, in the reader's language.
    change_form_template = "admin/change_form.html"

    @admin.display(description=_("Name"), ordering="name")
    def shown_name(self, task):
        return _shown_name(task)

    @admin.display(description=_("Schedule"))
    def shown_schedule(self, task):
        """A crontab described in words ("在 02:30 Asia/Shanghai"), not as its five fields."""
        if task.crontab is not None:
            return task.crontab.human_readable
        return task.scheduler or "—"
