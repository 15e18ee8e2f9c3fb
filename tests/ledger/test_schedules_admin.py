"""Schedules live in the database with sensible defaults that a re-run never overwrites, and
staff can start a reconciliation from the admin."""

import io
from unittest import mock

import pytest
from django.core.management import call_command
from django.utils import translation
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from ledger import schedule_words
from ledger.schedules import ensure_schedules
from tests.factories import FacilityFactory, StaffFactory

pytestmark = pytest.mark.django_db


def test_setup_schedules_creates_the_defaults_once_and_keeps_staff_changes():
    FacilityFactory(timezone="Asia/Urumqi")
    call_command("setup_schedules")
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert {
        "Nightly reconciliation",
        "Expire unpaid deposits",
        "Monthly statements",
        "Monthly rollover (Asia/Urumqi)",
    } <= names
    nightly = PeriodicTask.objects.get(name="Nightly reconciliation")
    nightly.enabled = False
    nightly.save()
    ensure_schedules()
    assert PeriodicTask.objects.count() == len(names)
    assert not PeriodicTask.objects.get(name="Nightly reconciliation").enabled


def test_staff_can_see_the_schedules_in_the_admin(client):
    ensure_schedules()
    client.force_login(StaffFactory(is_superuser=True))
    page = client.get("/admin/django_celery_beat/periodictask/")
    assert page.status_code == 200 and b"Nightly reconciliation" in page.content


def test_the_reconcile_now_button_queues_a_manual_run_after_commit(
    client, django_capture_on_commit_callbacks
):
    client.force_login(StaffFactory(is_superuser=True))
    with (
        mock.patch("ledger.tasks.reconcile_ledger.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post("/admin/ledger/scheduledrun/reconcile-now/")
    assert response.status_code == 302
    delay.assert_called_once_with(trigger="manual")


def test_the_reconcile_now_button_only_answers_post(client):
    client.force_login(StaffFactory(is_superuser=True))
    with mock.patch("ledger.tasks.reconcile_ledger.delay") as delay:
        assert client.get("/admin/ledger/scheduledrun/reconcile-now/").status_code == 405
    delay.assert_not_called()


def test_staff_can_ask_for_a_run_with_every_exact_query(client, django_capture_on_commit_callbacks):
    client.force_login(StaffFactory(is_superuser=True))
    with (
        mock.patch("ledger.tasks.reconcile_ledger.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post("/admin/ledger/scheduledrun/reconcile-now/", {"exact": "1"})
    assert response.status_code == 302
    delay.assert_called_once_with(trigger="manual", exact=True)


DEFAULT_TASKS = {
    "catalog.tasks.escalate_overdue_disputes",
    "ledger.tasks.reconcile_ledger",
    "ledger.tasks.create_journal_partitions",
    "ledger.tasks.expire_stale_deposits",
    "ledger.tasks.generate_monthly_statements",
    "ledger.tasks.roll_over_periods",
    "monitoring.tasks.purge_monitoring_data",
    "monitoring.tasks.refund_stale_holds",
    "payments.tasks.poll_pending_payments",
    "payments.tasks.queue_unsent_receipts",
    "payments.tasks.retry_provider_calls",
    "reports.tasks.queue_staff_digests",
}


def test_migrate_alone_schedules_the_nightly_work():
    PeriodicTask.objects.all().delete()
    FacilityFactory(timezone="America/New_York")

    call_command("migrate", verbosity=0)

    assert set(PeriodicTask.objects.values_list("task", flat=True)) == DEFAULT_TASKS
    rollovers = PeriodicTask.objects.filter(task="ledger.tasks.roll_over_periods")
    assert {task.crontab.timezone.key for task in rollovers} == {"America/New_York"}
    assert all(task.enabled for task in PeriodicTask.objects.all())


def test_migrate_keeps_what_staff_changed_and_adds_no_second_schedule():
    call_command("migrate", verbosity=0)
    before = PeriodicTask.objects.count()
    reconciliation = PeriodicTask.objects.get(task="ledger.tasks.reconcile_ledger")
    reconciliation.enabled = False
    reconciliation.save()
    expiry = PeriodicTask.objects.get(task="ledger.tasks.expire_stale_deposits")
    expiry.name = "Expire deposits (every 15 minutes)"
    expiry.interval = IntervalSchedule.objects.create(every=15, period=IntervalSchedule.MINUTES)
    expiry.save()
    rollover = PeriodicTask.objects.get(task="ledger.tasks.roll_over_periods")
    rollover.name = "Rollover, China"
    rollover.kwargs = rollover.kwargs.replace(" ", "")  # as typed into the admin
    rollover.save()

    call_command("migrate", verbosity=0)

    assert PeriodicTask.objects.count() == before
    assert not PeriodicTask.objects.get(pk=reconciliation.pk).enabled
    expiry = PeriodicTask.objects.get(task="ledger.tasks.expire_stale_deposits")
    assert (expiry.name, expiry.interval.every) == ("Expire deposits (every 15 minutes)", 15)
    assert PeriodicTask.objects.get(task="ledger.tasks.roll_over_periods").name == "Rollover, China"


def _every_default_schedule():
    from catalog.schedules import ensure_escalation_schedule
    from monitoring.schedules import ensure_schedule
    from reports.schedules import ensure_digest_schedule

    ensure_schedules()
    ensure_escalation_schedule()
    ensure_schedule()
    ensure_digest_schedule()
    return list(PeriodicTask.objects.order_by("id"))


def test_every_default_schedule_reads_in_the_reader_s_language_and_is_stored_in_english():
    FacilityFactory(timezone="Asia/Urumqi")
    schedules = _every_default_schedule()
    assert {task.task for task in schedules} == DEFAULT_TASKS
    for task in schedules:
        assert task.name.isascii() and task.description.isascii(), task.task
        assert task.description, task.task
        with translation.override("zh-hans"):
            name = schedule_words.shown_name(task.task, task.name)
            description = schedule_words.shown_description(task.task, task.description)
        # Translated (their product names and codes aside: PostgreSQL, PDF, a time zone).
        assert name != task.name and description != task.description, task.task
        assert "\u4e00" <= name[0] <= "\u9fff" and "\u4e00" <= description[0] <= "\u9fff"
        with translation.override("en"):
            assert schedule_words.shown_name(task.task, task.name) == task.name
            assert schedule_words.shown_description(task.task, task.description) == (
                task.description
            )
    rollover = PeriodicTask.objects.get(name="Monthly rollover (Asia/Urumqi)")
    with translation.override("zh-hans"):
        assert schedule_words.shown_name(rollover.task, rollover.name) == (
            "月度结转（Asia/Urumqi）"
        )
        assert str(rollover).startswith("月度结转（Asia/Urumqi）: ")


def test_a_schedule_a_person_named_keeps_its_name_in_every_language():
    with translation.override("zh-hans"):
        assert schedule_words.shown_name("ledger.tasks.reconcile_ledger", "Night audit") == (
            "Night audit"
        )
        # The default wording of one task on a schedule that runs another is a person's words.
        assert (
            schedule_words.shown_name("ledger.tasks.expire_stale_deposits", "Monthly statements")
            == "Monthly statements"
        )
        assert schedule_words.shown_name("myapp.tasks.tidy", "Monthly rollover (UTC)") == (
            "Monthly rollover (UTC)"
        )
        assert (
            schedule_words.shown_description("ledger.tasks.reconcile_ledger", "Checks at night.")
            == "Checks at night."
        )


def test_the_schedules_pages_name_the_defaults_in_chinese(client):
    _every_default_schedule()
    nightly = PeriodicTask.objects.get(task="ledger.tasks.reconcile_ledger")
    PeriodicTask.objects.create(
        name="Night audit",
        task="ledger.tasks.reconcile_ledger",
        interval=nightly.interval
        or IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS),
    )
    client.force_login(StaffFactory(is_superuser=True))
    listing = client.get(
        "/admin/django_celery_beat/periodictask/", HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()
    assert "每晚对账" in listing and "工作人员每日待办邮件" in listing
    assert "Nightly reconciliation" not in listing and "Daily staff digest" not in listing
    assert "Night audit" in listing  # a person's own name, as written
    assert "在 02:30 Asia/Shanghai" in listing  # the crontab in words, not "30 2 * * *"

    change = client.get(
        f"/admin/django_celery_beat/periodictask/{nightly.pk}/change/",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    ).content.decode()
    assert "每晚对账" in change and "核对日记账、余额、月度期间与汇款是否一致" in change
    assert "Nightly reconciliation" not in change and "Checks journal" not in change
    assert "在 02:30 Asia/Shanghai" in change  # the cron described by cron-descriptor's zh_CN
    assert "Translation:" not in change  # the library's blocked inline script is not sent

    english = client.get(
        f"/admin/django_celery_beat/periodictask/{nightly.pk}/change/", HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "Nightly reconciliation" in english and "At 02:30 Asia/Shanghai" in english
    assert "每晚对账" not in english

    crontab = client.get(
        f"/admin/django_celery_beat/crontabschedule/{nightly.crontab_id}/change/",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    ).content.decode()
    assert "每晚对账" in crontab and "Nightly reconciliation" not in crontab


def _form_data(task: PeriodicTask, **changes) -> dict:
    data = {
        "name": task.name,
        "regtask": task.task,
        "task": task.task,
        "enabled": "on",
        "description": task.description,
        "interval": task.interval_id or "",
        "crontab": task.crontab_id or "",
        "solar": "",
        "clocked": "",
        "start_time_0": "",
        "start_time_1": "",
        "args": task.args,
        "kwargs": task.kwargs,
        "expires_0": "",
        "expires_1": "",
        "expire_seconds": "",
        "queue": "",
        "exchange": "",
        "routing_key": "",
        "priority": "",
        "headers": task.headers,
    }
    return data | changes


def test_a_default_saved_as_shown_in_chinese_stays_stored_in_its_fixed_wording(client):
    ensure_schedules()
    nightly = PeriodicTask.objects.get(task="ledger.tasks.reconcile_ledger")
    client.force_login(StaffFactory(is_superuser=True))
    url = f"/admin/django_celery_beat/periodictask/{nightly.pk}/change/"
    shown = _form_data(
        nightly,
        name="每晚对账",
        description="核对日记账、余额、月度期间与汇款是否一致；发现问题时发送邮件。",
        enabled="",
    )
    response = client.post(url, shown, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 302, response.content.decode()[:3000]
    nightly.refresh_from_db()
    assert (nightly.name, nightly.enabled) == ("Nightly reconciliation", False)
    assert nightly.description.startswith("Checks journal")

    renamed = _form_data(nightly, name="夜间对账", description="每晚两点半。")
    assert client.post(url, renamed, HTTP_ACCEPT_LANGUAGE="zh-hans").status_code == 302
    nightly.refresh_from_db()
    assert (nightly.name, nightly.description) == ("夜间对账", "每晚两点半。")
    with translation.override("en"):  # a person's words now, in every language
        assert schedule_words.shown_name(nightly.task, nightly.name) == "夜间对账"


def test_setup_schedules_lists_the_schedules_in_the_reader_s_language():
    out = io.StringIO()
    with translation.override("zh-hans"):
        call_command("setup_schedules", stdout=out)
    assert "每晚对账: 在 02:30 Asia/Shanghai" in out.getvalue()
    assert "Nightly reconciliation" not in out.getvalue()
