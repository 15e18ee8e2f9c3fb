"""Schedules live in the database with sensible defaults that a re-run never overwrites, and
staff can start a reconciliation from the admin."""

from unittest import mock

import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

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
