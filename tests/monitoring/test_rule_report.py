"""The per-rule report: each rule version of a facility with the holds it fired in a period of
the facility's local days and what became of them, on a page for whoever may view the rules
and as a spreadsheet-safe CSV; another facility answers as a missing one does."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from accounts.roles import SECURITY_OFFICER, TRUST_OFFICER, assign_role
from monitoring import services
from monitoring.models import Hold, Rule
from tests.factories import FacilityFactory, InmateFactory, StaffFactory

from .helpers import paid, rule_at

pytestmark = pytest.mark.django_db

REPORT = "/admin/reports/rules/"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def officer_at(facility, role=SECURITY_OFFICER):
    officer = StaffFactory(facilities=[facility])
    assign_role(officer, role)
    return officer


def held_at(client, inmate, amount_fen, instant, state=Hold.State.PENDING):
    payment = paid(client, inmate, amount_fen)
    hold = Hold.objects.get(deposit_id=payment.deposit_id)
    decided = None if state == Hold.State.PENDING else timezone.now()
    Hold.objects.filter(pk=hold.pk).update(created_at=instant, state=state, decided_at=decided)
    return hold


@pytest.fixture
def site(client):
    facility = FacilityFactory(
        timezone="Asia/Shanghai", monthly_cap_fen=10_000_000, balance_cap_fen=10_000_000
    )
    inmate = InmateFactory(facility=facility)
    officer = officer_at(facility)
    rule = rule_at(facility, Rule.Kind.MONITORED_INMATE, inmate=inmate, note="=HYPERLINK(1)")
    day = dt.datetime(2026, 3, 2, tzinfo=SHANGHAI)
    # version 1: one accepted, one rejected, one still pending on 2 March (local)
    held_at(client, inmate, 1_000, day + dt.timedelta(minutes=30), Hold.State.ACCEPTED)
    held_at(client, inmate, 2_000, day + dt.timedelta(hours=12), Hold.State.REJECTED)
    held_at(client, inmate, 3_000, day + dt.timedelta(hours=23, minutes=59))
    # 23:30 on 1 March in Shanghai: the day before (the 00:30 hold above is 2 March there,
    # though still 1 March in UTC)
    held_at(client, inmate, 4_000, day - dt.timedelta(minutes=30), Hold.State.ACCEPTED)
    rule.note = "second look"
    services.save_rule(rule=rule, staff=officer)
    # version 2: one refunded for want of a decision
    held_at(client, inmate, 5_000, day + dt.timedelta(hours=8), Hold.State.TIMED_OUT)
    return facility, rule, officer


def rows_of(page) -> list[list[str]]:
    import re

    body = page.content.decode().split("<tbody>")[1].split("</tbody>")[0]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body)
    ]


def test_each_version_counts_its_hits_and_outcomes_in_local_days(client, site):
    facility, rule, officer = site
    client.force_login(officer)
    page = client.get(REPORT, {"facility": facility.pk, "from": "2026-03-02", "to": "2026-03-02"})
    assert page.status_code == 200
    assert rows_of(page) == [
        [str(rule.pk), "1", "Monitored inmate", "=HYPERLINK(1)", "yes", "3", "1", "1", "0", "1"],
        [str(rule.pk), "2", "Monitored inmate", "second look", "yes", "1", "0", "0", "1", "0"],
    ]
    # the day before (local) holds only the evening hold
    period = {"facility": facility.pk, "from": "2026-03-01", "to": "2026-03-01"}
    earlier = client.get(REPORT, period)
    assert [row[5:] for row in rows_of(earlier)] == [["1", "1", "0", "0", "0"], ["0"] * 5]


def test_the_csv_is_excel_safe_utf8_and_reads_in_chinese(client, site):
    facility, rule, officer = site
    client.force_login(officer)
    answer = client.get(
        REPORT,
        {"facility": facility.pk, "from": "2026-03-02", "to": "2026-03-02", "format": "csv"},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert answer["Content-Type"].startswith("text/csv")
    text = answer.content.decode("utf-8")
    assert text.startswith("\ufeff规则,版本,类型,备注,启用,触发次数,已接受,已拒绝,超时退款,待审核")
    assert f"\r\n{rule.pk},1,受监控的在押人员,'=HYPERLINK(1),是,3,1,1,0,1\r\n" in text


def test_only_who_may_view_rules_and_only_their_facilities(client, site):
    facility, _rule, _officer = site
    client.force_login(officer_at(facility, TRUST_OFFICER))
    assert client.get(REPORT, {"facility": facility.pk}).status_code == 403
    elsewhere = officer_at(FacilityFactory())
    client.force_login(elsewhere)
    assert client.get(REPORT, {"facility": facility.pk}).status_code == 404
    index = client.get("/admin/reports/").content.decode()
    assert "/admin/reports/rules/" in index
    assert "/admin/reports/deposits/" not in index
    assert client.get("/admin/reports/deposits/").status_code == 403
