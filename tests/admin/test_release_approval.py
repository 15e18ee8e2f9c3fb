"""The inmate admin's release action and the second approver: an inmate whose payout is above
the facility's threshold is not released by the action but gets a ``release_payout`` money
request with the reason typed on the confirmation page, and nothing is paid out until a second
trust officer approves it; inmates at or below the threshold are released at once."""

import uuid

import pytest

from accounts.models import FacilityAssignment
from commissary import errors
from facilities.models import Inmate
from ledger import services
from ledger.models import StaffRequest, Transaction
from ledger.selectors import inmate_balance
from tests.factories import InmateFactory, StaffFactory
from tests.ledger.helpers import deposit

pytestmark = pytest.mark.django_db

SMALL_FEN, LARGE_FEN = 3_000, 60_000  # the facility's threshold is 50,000 fen (500.00 yuan)


def release(client, inmates, **extra):
    return client.post(
        "/admin/facilities/inmate/",
        {"action": "release_inmates", "_selected_action": [i.pk for i in inmates], **extra},
        follow=True,
    )


def payouts_of(inmate):
    return Transaction.objects.filter(kind=Transaction.Kind.PAYOUT, inmate=inmate)


def messages_of(answer) -> list[str]:
    return [str(message) for message in answer.context["messages"]]


@pytest.fixture
def small_and_large(site_a):
    large = InmateFactory(facility=site_a.facility)
    deposit(site_a.inmate, SMALL_FEN)
    deposit(large, LARGE_FEN)
    assert site_a.facility.adjustment_approval_threshold_fen == 50_000
    return site_a.inmate, large


def test_the_confirmation_page_says_who_is_released_now_and_who_waits(
    client, site_a, small_and_large, ledger_snapshot
):
    small, large = small_and_large
    before = ledger_snapshot()
    client.force_login(site_a.staff["facility_admin"])
    page = release(client, [small, large])
    text = page.content.decode()
    rows = {row["inmate"].pk: row for row in page.context["rows"]}
    assert (rows[small.pk]["waits"], rows[large.pk]["waits"]) == (False, True)
    assert text.count("Released now") == 1 and text.count("Waits for a second trust officer") == 1
    assert "1 payout is above" not in text and "One payout is above" in text
    assert 'name="reason"' in text
    assert ledger_snapshot() == before and not StaffRequest.objects.exists()


def test_the_reason_is_required_when_a_release_waits(client, site_a, small_and_large):
    small, large = small_and_large
    client.force_login(site_a.staff["facility_admin"])
    page = release(client, [small, large], confirm_count="2", request_key=uuid.uuid4())
    assert "Give a reason" in page.content.decode()
    assert not Inmate.objects.filter(status=Inmate.Status.RELEASED).exists()
    assert not StaffRequest.objects.exists()


def test_a_release_below_the_threshold_asks_no_reason(client, site_a):
    deposit(site_a.inmate, SMALL_FEN)
    client.force_login(site_a.staff["facility_admin"])
    page = release(client, [site_a.inmate])
    assert 'name="reason"' not in page.content.decode()
    release(client, [site_a.inmate], confirm_count="1", request_key=uuid.uuid4())
    site_a.inmate.refresh_from_db()
    assert site_a.inmate.status == Inmate.Status.RELEASED
    assert not StaffRequest.objects.exists()


def test_one_is_released_and_one_waits_until_a_second_trust_officer_approves(
    client, site_a, small_and_large
):
    small, large = small_and_large
    releaser = site_a.staff["facility_admin"]
    client.force_login(releaser)
    answer = release(
        client,
        [small, large],
        confirm_count="2",
        reason="Sentence served",
        request_key=uuid.uuid4(),
    )

    assert "1 inmate released now. 1 release waits for a second trust officer." in messages_of(
        answer
    )
    small.refresh_from_db()
    large.refresh_from_db()
    assert small.status == Inmate.Status.RELEASED
    assert payouts_of(small).get().entries.get(account__kind="payouts").amount_fen == SMALL_FEN
    # The large payout is only asked for: the inmate is still here with every fen.
    assert large.status == Inmate.Status.ACTIVE and large.card_token
    assert not payouts_of(large).exists()
    assert inmate_balance(inmate=large).spendable_fen == LARGE_FEN
    waiting = StaffRequest.objects.get()
    assert (waiting.kind, waiting.state, waiting.inmate_id) == (
        StaffRequest.Kind.RELEASE_PAYOUT,
        StaffRequest.State.REQUESTED,
        large.pk,
    )
    assert waiting.requested_by == releaser and waiting.reason == "Sentence served"
    assert waiting.needs_approval

    client.force_login(site_a.staff["trust_officer"])
    client.post(f"/admin/ledger/staffrequest/{waiting.pk}/decide/", {"decision": "approve"})

    large.refresh_from_db()
    waiting.refresh_from_db()
    assert large.status == Inmate.Status.RELEASED
    assert waiting.state == StaffRequest.State.EXECUTED
    payout = payouts_of(large).get()
    assert payout.entries.get(account__kind="payouts").amount_fen == LARGE_FEN
    assert (payout.created_by, payout.approved_by) == (releaser, site_a.staff["trust_officer"])
    assert waiting.transaction == payout


def test_the_requester_cannot_approve_their_own_release(client, site_a, ledger_snapshot):
    # A superuser assigned to the facility may both release and approve money: never their own.
    chief = StaffFactory(is_superuser=True, facilities=[site_a.facility])
    deposit(site_a.inmate, LARGE_FEN)
    client.force_login(chief)
    release(client, [site_a.inmate], confirm_count="1", reason="Pardoned", request_key=uuid.uuid4())
    waiting = StaffRequest.objects.get()
    before = ledger_snapshot()

    with pytest.raises(errors.NotPermitted):
        services.approve_request(staff_request_id=waiting.pk, approver_id=chief.pk)
    client.post(f"/admin/ledger/staffrequest/{waiting.pk}/decide/", {"decision": "approve"})

    assert ledger_snapshot() == before
    waiting.refresh_from_db()
    site_a.inmate.refresh_from_db()
    assert waiting.state == StaffRequest.State.REQUESTED and waiting.decided_by is None
    assert site_a.inmate.status == Inmate.Status.ACTIVE


def test_the_form_sent_twice_files_one_request(client, site_a):
    deposit(site_a.inmate, LARGE_FEN)
    client.force_login(site_a.staff["facility_admin"])
    form = {"confirm_count": "1", "reason": "Sentence served", "request_key": uuid.uuid4()}
    release(client, [site_a.inmate], **form)
    again = release(client, [site_a.inmate], **form)
    assert StaffRequest.objects.count() == 1
    assert "0 inmates released now. 1 release waits for a second trust officer." in (
        messages_of(again)
    )
    assert not payouts_of(site_a.inmate).exists()


def test_the_release_action_in_chinese_says_what_waits(client, site_a, small_and_large):
    small, large = small_and_large
    client.force_login(site_a.staff["facility_admin"])
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/admin/"})
    page = release(client, [small, large]).content.decode()
    assert "立即释放" in page and "等待第二位信托专员审批" in page
    answer = release(
        client, [small, large], confirm_count="2", reason="刑满", request_key=uuid.uuid4()
    )
    assert "已立即释放 1 名在押人员。 1 项释放正在等待第二位信托专员审批。" in messages_of(answer)


def test_staff_not_assigned_to_the_facility_cannot_file_a_release_request(site_a):
    # Staff of another facility never reach the inmate (the admin scope); the service refuses
    # a request from someone not assigned there all the same.
    outsider = StaffFactory()
    deposit(site_a.inmate, LARGE_FEN)
    with pytest.raises(errors.NotPermitted):
        services.file_release_request_if_needed(
            inmate_id=site_a.inmate.pk, reason="x", staff_id=outsider.pk
        )
    assert not StaffRequest.objects.exists()
    assert not FacilityAssignment.objects.filter(user=outsider).exists()
