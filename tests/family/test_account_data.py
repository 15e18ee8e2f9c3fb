"""A depositor's own data: downloadable as JSON; closing the account removes the sign-in and
links but keeps every money record, detached from the closed account."""

import json

import pytest

from accounts.models import DepositorLink, User
from ledger.models import Deposit
from tests.factories import InmateFactory, StaffFactory
from tests.ledger.helpers import deposit
from tests.payments.helpers import PASSWORD, approved_link, depositor

pytestmark = pytest.mark.django_db


def test_download_holds_own_links_and_deposits_only(client):
    user, other = depositor(), depositor()
    inmate = InmateFactory()
    approved_link(user, inmate)
    mine, theirs = deposit(inmate, 1_000), deposit(inmate, 2_000)
    Deposit.objects.filter(pk=mine.pk).update(depositor=user)
    Deposit.objects.filter(pk=theirs.pk).update(depositor=other)
    client.force_login(user)
    answer = client.get("/family/account/data.json")
    assert answer["Content-Disposition"].startswith("attachment")
    data = json.loads(answer.content)
    assert data["account"]["email"] == user.email
    assert [d["reference"] for d in data["deposits"]] == [str(mine.reference)]
    assert [link["inmate_number"] for link in data["links"]] == [inmate.inmate_number]


def test_closing_keeps_money_records_detached(client, assert_ledger_consistent):
    user = depositor()
    inmate = InmateFactory()
    approved_link(user, inmate)
    kept = deposit(inmate, 5_000)
    Deposit.objects.filter(pk=kept.pk).update(depositor=user)
    client.force_login(user)
    answer = client.post("/family/account/", {"password": PASSWORD, "understood": "on"})
    assert answer.status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()
    assert not DepositorLink.objects.filter(inmate=inmate).exists()
    kept.refresh_from_db()
    assert kept.depositor_id is None and kept.status == Deposit.Status.CREDITED
    assert_ledger_consistent()


def test_closing_needs_the_password(client):
    user = depositor()
    client.force_login(user)
    client.post("/family/account/", {"password": "wrong", "understood": "on"})
    assert User.objects.filter(pk=user.pk).exists()


def test_staff_cannot_close_their_account_from_the_family_page(client):
    staff = StaffFactory()
    client.force_login(staff)
    client.post("/family/account/", {"password": "correct horse battery", "understood": "on"})
    assert User.objects.filter(pk=staff.pk).exists()


def test_the_closing_acknowledgement_is_one_sentence_beside_its_box(client):
    client.force_login(depositor())
    page = client.get("/family/account/", headers={"accept-language": "zh-hans"}).content.decode()
    assert 'name="understood"' in page
    assert "我了解注销账户后无法恢复。</label>" in page and "恢复。：" not in page
