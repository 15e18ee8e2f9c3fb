"""Roles, permissions, sign-in logs and schedules read in the reader's language wherever the
admin names them (their stored names are English: a group's stable name, a permission's name
as migrate wrote it, the libraries' own records)."""

import datetime as dt

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import Group, Permission
from django.utils import timezone, translation
from django_celery_beat.models import CrontabSchedule

from accounts import roles
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


def test_permissions_read_in_the_reader_s_language():
    add_inmate = Permission.objects.get(codename="add_inmate")
    approve = Permission.objects.get(codename="approve_money")
    with translation.override("zh-hans"):
        assert str(add_inmate).endswith("| 可添加在押人员")
        assert "Can" not in str(add_inmate)
        assert str(approve).endswith("可审批其他工作人员的资金申请")
    with translation.override("en"):
        assert str(add_inmate).endswith("| Can add inmate")


def test_roles_read_in_the_reader_s_language():
    group = Group.objects.get(name=roles.TRUST_OFFICER.group_name)
    with translation.override("zh-hans"):
        assert str(group) == str(roles.TRUST_OFFICER.label) != roles.TRUST_OFFICER.group_name
    assert str(Group(name="Night shift")) == "Night shift"  # a group of one's own, as named


def test_the_person_and_role_pages_name_roles_and_permissions_in_chinese(client):
    client.force_login(StaffFactory(is_superuser=True))
    group = Group.objects.get(name=roles.AUDITOR.group_name)
    for url in (f"/admin/auth/group/{group.pk}/change/", "/admin/accounts/user/"):
        page = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
        assert "Can view" not in page and ">Auditor<" not in page, url


def test_sign_in_logs_name_themselves_in_the_reader_s_language():
    at = dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC)
    common = {"user_agent": "x", "ip_address": "10.0.0.9", "username": "staff1"}
    common |= {"http_accept": "*/*", "path_info": "/admin/login/"}
    attempt = AccessAttempt(**common, attempt_time=at, failures_since_start=1)
    failure = AccessFailureLog(**common, attempt_time=at, locked_out=True)
    log = AccessLog(**common, attempt_time=at)
    with translation.override("zh-hans"), timezone.override("Asia/Shanghai"):
        assert "登录尝试" in str(attempt) and "Attempted" not in str(attempt)
        assert str(failure).startswith("staff1 于") and "已锁定" in str(failure)
        assert "staff1 于" in str(log) and "Access Log" not in str(log)


def test_a_cron_schedule_is_described_in_the_reader_s_language():
    nightly = CrontabSchedule(minute="30", hour="2", timezone="Asia/Shanghai")
    with translation.override("zh-hans"):
        assert nightly.human_readable == "在 02:30 Asia/Shanghai"
    with translation.override("en"):
        assert nightly.human_readable == "At 02:30 Asia/Shanghai"


def test_the_sign_in_attempts_and_schedule_pages_name_their_columns_in_chinese(client):
    client.force_login(StaffFactory(is_superuser=True))
    AccessAttempt.objects.create(
        user_agent="x",
        ip_address="10.0.0.9",
        username="staff1",
        http_accept="*/*",
        path_info="/admin/login/",
        failures_since_start=1,
    )
    attempts = client.get("/admin/axes/accessattempt/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert ">Status<" not in attempts.content.decode()
    assert "状态" in attempts.content.decode()
    tasks = client.get("/admin/django_celery_beat/periodictask/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "<span>Scheduler</span>" not in tasks.content.decode()


def test_the_audit_trail_s_yes_and_no_and_the_task_field_read_in_chinese():
    from django_celery_beat.models import PeriodicTask

    from accounts import audit_display

    with translation.override("zh-hans"):
        assert audit_display.value_text(Group, "name", True) == "是"
        assert audit_display.value_text(Group, "name", "False") == "否"
        assert audit_display.field_label(PeriodicTask, "task") == "任务"


def test_the_two_box_selector_of_permissions_reads_in_chinese(client):
    client.force_login(StaffFactory(is_superuser=True))
    script = client.get("/admin/jsi18n/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert '"Choose all %s": "\\u5168\\u9009%s"' in script  # 全选%s
