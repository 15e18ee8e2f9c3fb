"""The daily digest: one email a staff member of what waits at their facilities, with the real
queue's counts and links, in their language, never when nothing waits, never twice a day, and
never to someone who switched it off on their own preferences page."""

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from ledger import services
from ledger.models import StaffRequest
from reports import digest, tasks
from reports.schedules import DIGEST_TASK
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_digest_sent_yet():
    cache.clear()
    yield
    cache.clear()


def with_email(user, language=""):
    user.email = f"{user.username}@prison.example"
    user.language = language
    user.save(update_fields=["email", "language"])
    return user


def credit_request(site, officer="trust_officer"):
    return services.request_money_action(
        kind=StaffRequest.Kind.CREDIT,
        inmate_id=site.inmate.pk,
        amount_fen=5_000,
        reason="Lost property compensation",
        staff_id=site.staff[officer].pk,
    )


def test_the_digest_lists_what_waits_with_links_and_goes_only_to_who_it_waits_for(site_a):
    asker = with_email(site_a.staff["trust_officer"])
    approver = with_email(site_a.staff["trust_officer_2"])
    credit_request(site_a)

    assert digest.send_staff_digest(user_id=asker.pk) is False  # their own request
    assert digest.send_staff_digest(user_id=approver.pk) is True
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == [approver.email]
    assert email.subject == "Commissary: 1 item waits for you"
    assert "- Money requests waiting for your approval: 1" in email.body
    assert "http://127.0.0.1:8000/admin/ledger/staffrequest/?awaiting=you" in email.body
    assert "/admin/reports/preferences/" in email.body
    assert "Family links" not in email.body  # empty queues are left out


def test_the_digest_is_written_in_the_staff_member_s_language(site_a):
    approver = with_email(site_a.staff["trust_officer_2"], language="zh-hans")
    credit_request(site_a)
    assert digest.send_staff_digest(user_id=approver.pk)
    email = mail.outbox[0]
    assert "等待您审批的资金申请: 1" in email.body
    assert "1" in email.subject and "Commissary" not in email.subject


def test_nothing_is_sent_when_nothing_waits_or_to_who_opted_out(site_a):
    approver = with_email(site_a.staff["trust_officer_2"])
    assert digest.send_staff_digest(user_id=approver.pk) is False
    credit_request(site_a)
    approver.receives_digest = False
    approver.save(update_fields=["receives_digest"])
    assert digest.send_staff_digest(user_id=approver.pk) is False
    assert mail.outbox == []


def test_the_fan_out_queues_one_task_per_staff_member_and_each_gets_one_email_a_day(
    site_a, site_b, monkeypatch
):
    for site in (site_a, site_b):
        for user in site.staff.values():
            with_email(user)
    site_b.staff["auditor"].receives_digest = False
    site_b.staff["auditor"].save(update_fields=["receives_digest"])
    StaffFactory(is_active=False, email="gone@prison.example")
    credit_request(site_a)
    credit_request(site_b)
    queued = []
    monkeypatch.setattr(tasks.send_staff_digest, "delay", lambda **kwargs: queued.append(kwargs))

    assert tasks.queue_staff_digests.apply().get() == 9
    expected = {user.pk for site in (site_a, site_b) for user in site.staff.values()} - {
        site_b.staff["auditor"].pk
    }
    assert {each["user_id"] for each in queued} == expected
    for _ in range(2):  # a second run the same day sends nothing more
        for each in queued:
            tasks.send_staff_digest.apply(kwargs=each).get()
    assert sorted(email.to[0] for email in mail.outbox) == sorted(
        [site_a.staff["trust_officer_2"].email, site_b.staff["trust_officer_2"].email]
    )


def test_migrate_schedules_the_digest_once():
    PeriodicTask.objects.filter(task=DIGEST_TASK).delete()
    call_command("migrate", verbosity=0)
    call_command("migrate", verbosity=0)
    schedule = PeriodicTask.objects.get(task=DIGEST_TASK)
    assert (schedule.crontab.hour, schedule.crontab.minute) == ("7", "30")
    assert schedule.enabled


def test_a_staff_member_switches_their_own_digest_off_and_picks_its_language(client, site_a):
    officer = with_email(site_a.staff["trust_officer"])
    colleague = site_a.staff["trust_officer_2"]
    client.force_login(officer)
    assert client.get("/admin/reports/preferences/").status_code == 200
    answer = client.post(
        "/admin/reports/preferences/",
        {"language": "zh-hans", "user": colleague.pk},  # the box left unticked: off
    )
    assert answer.status_code == 302
    officer.refresh_from_db()
    colleague.refresh_from_db()
    assert (officer.receives_digest, officer.language) == (False, "zh-hans")
    assert (colleague.receives_digest, colleague.language) == (True, "")
