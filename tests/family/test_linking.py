"""Linking a depositor to an inmate: facility, number and surname must all match; every
mismatch answers the same; look-ups are rate-limited per depositor and per address; a facility
that asks for approval keeps the link pending until staff decide; a blocked depositor cannot
link there."""

import re

import pytest

from accounts.models import DepositorLink
from family import services
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.payments.helpers import depositor

pytestmark = pytest.mark.django_db

EN = {"accept-language": "en"}


@pytest.fixture
def family(client):
    user = depositor()
    client.force_login(user)
    return user


def _attempt(client, facility, number, surname, **extra):
    return client.post(
        "/family/links/new",
        {"facility": facility.pk, "inmate_number": number, "surname": surname},
        headers=EN,
        **extra,
    )


def _page_without_echoes(response) -> str:
    """The page less what the form echoes back (typed values, the chosen facility) and the
    CSRF token: what is left must be identical for every mismatch."""
    text = response.content.decode()
    return re.sub(r'\s(value="[^"]*"|selected)', "", text)


def test_every_mismatch_gives_the_same_answer(client, family):
    here = FacilityFactory(links_need_approval=False)
    elsewhere = FacilityFactory()
    inmate = InmateFactory(facility=here, surname="Zhang", inmate_number="A1001")
    InmateFactory(facility=here, surname="Wang", inmate_number="A1002")
    wrong_facility = _attempt(client, elsewhere, "A1001", "Zhang")
    wrong_number = _attempt(client, here, "A1009", "Zhang")
    wrong_surname = _attempt(client, here, "A1001", "Wang")
    answers = [wrong_facility, wrong_number, wrong_surname]
    assert {answer.status_code for answer in answers} == {200}
    bodies = {_page_without_echoes(answer) for answer in answers}
    assert len(bodies) == 1
    assert "We could not link you with these details." in bodies.pop()
    assert not DepositorLink.objects.exists()
    assert inmate.depositor_links.count() == 0


def test_matching_details_link_at_once_where_no_approval_is_needed(client, family):
    facility = FacilityFactory(links_need_approval=False)
    inmate = InmateFactory(facility=facility, surname="Zhang", inmate_number="A1001")
    answer = _attempt(client, facility, " a1001 ", "zhang ")
    assert answer.status_code == 302
    link = DepositorLink.objects.get(depositor=family)
    assert link.inmate == inmate and link.status == DepositorLink.Status.APPROVED


def test_link_waits_for_staff_where_the_facility_asks_for_approval(client, family):
    facility = FacilityFactory(links_need_approval=True)
    InmateFactory(facility=facility, surname="Zhang", inmate_number="A1001")
    _attempt(client, facility, "A1001", "Zhang")
    link = DepositorLink.objects.get(depositor=family)
    assert link.status == DepositorLink.Status.PENDING
    assert client.get(f"/family/links/{link.pk}/deposit").status_code == 404
    staff = StaffFactory(facilities=[facility])
    services.decide_link(link_id=link.pk, status="approved", staff=staff)
    assert client.get(f"/family/links/{link.pk}/deposit").status_code == 200


def test_rejection_needs_a_reason_and_is_shown_to_the_family(client, family):
    facility = FacilityFactory(links_need_approval=True)
    InmateFactory(facility=facility, surname="Zhang", inmate_number="A1001")
    _attempt(client, facility, "A1001", "Zhang")
    link = DepositorLink.objects.get(depositor=family)
    staff = StaffFactory(facilities=[facility])
    from commissary import errors

    with pytest.raises(errors.ValidationFailed):
        services.decide_link(link_id=link.pk, status="rejected", staff=staff, reason=" ")
    services.decide_link(
        link_id=link.pk, status="rejected", staff=staff, reason="Not on the visitor list."
    )
    assert "Not on the visitor list." in client.get("/", headers=EN).content.decode()


def test_blocked_depositor_cannot_link_at_that_facility(client, family):
    facility = FacilityFactory(links_need_approval=False)
    InmateFactory(facility=facility, surname="Zhang", inmate_number="A1001")
    services.block_depositor(
        depositor_id=family.pk, facility_id=facility.pk, reason="Fraud", staff=StaffFactory()
    )
    answer = _attempt(client, facility, "A1001", "Zhang")
    assert "does not accept links or deposits from you" in answer.content.decode()
    assert not DepositorLink.objects.exists()


def test_link_look_ups_are_rate_limited_per_depositor(client, family, settings):
    settings.LINK_ATTEMPTS_PER_HOUR = 3
    facility = FacilityFactory(links_need_approval=False)
    InmateFactory(facility=facility, surname="Zhang", inmate_number="A1001")
    for n in range(3):
        assert _attempt(client, facility, f"X{n}", "Zhang").status_code == 200
    # Even the right details are refused once the limit is reached.
    refused = _attempt(client, facility, "A1001", "Zhang")
    assert refused.status_code == 429
    assert not DepositorLink.objects.exists()


def test_link_look_ups_are_rate_limited_per_address(client, settings):
    settings.LINK_ATTEMPTS_PER_HOUR = 3
    facility = FacilityFactory(links_need_approval=False)
    InmateFactory(facility=facility, surname="Zhang", inmate_number="A1001")
    for n in range(3):
        client.force_login(depositor())
        _attempt(client, facility, f"X{n}", "Zhang", REMOTE_ADDR="203.0.113.9")
    client.force_login(depositor())
    refused = _attempt(client, facility, "A1001", "Zhang", REMOTE_ADDR="203.0.113.9")
    assert refused.status_code == 429
    elsewhere = _attempt(client, facility, "A1001", "Zhang", REMOTE_ADDR="198.51.100.7")
    assert elsewhere.status_code == 302


def test_family_pages_need_a_signed_in_depositor(client):
    for url in ("/family/links/new", "/family/deposits/", "/family/account/"):
        answer = client.get(url)
        assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/")


def test_staff_approve_a_pending_link_in_the_admin_and_a_rejection_needs_a_reason(client):
    facility = FacilityFactory(links_need_approval=True)
    inmate = InmateFactory(facility=facility)
    link = DepositorLink.objects.create(
        depositor=depositor(),
        inmate=inmate,
        entered_inmate_number=inmate.inmate_number,
        entered_surname=inmate.surname,
    )
    staff = StaffFactory(is_superuser=True)
    client.force_login(staff)
    url = f"/admin/accounts/depositorlink/{link.pk}/change/"
    refused = client.post(url, {"status": "rejected", "decision_reason": ""})
    assert refused.status_code == 200
    link.refresh_from_db()
    assert link.status == DepositorLink.Status.PENDING
    client.post(url, {"status": "approved", "decision_reason": ""})
    link.refresh_from_db()
    assert link.status == DepositorLink.Status.APPROVED and link.decided_by == staff


def test_a_rejection_without_a_reason_is_refused_in_the_readers_language(client, family):
    from django.utils import translation

    from commissary import errors

    facility = FacilityFactory(links_need_approval=True)
    InmateFactory(facility=facility, surname="Zhang", inmate_number="A1002")
    _attempt(client, facility, "A1002", "Zhang")
    link = DepositorLink.objects.get(depositor=family)
    staff = StaffFactory(facilities=[facility])
    with translation.override("zh-hans"), pytest.raises(errors.ValidationFailed) as refused:
        services.decide_link(link_id=link.pk, status="rejected", staff=staff, reason="")
    with translation.override("zh-hans"):
        assert str(refused.value.message) == "请说明拒绝关联的原因。"
    link.refresh_from_db()
    assert link.status == DepositorLink.Status.PENDING


def test_a_number_typed_in_full_width_lower_case_with_spaces_links_and_is_stored_canonical(
    client, family
):
    here = FacilityFactory(links_need_approval=False)
    inmate = InmateFactory(facility=here, surname="Zhang", inmate_number="D0000005")
    answer = _attempt(client, here, " ｄ000 0005 ", "Zhang")
    assert answer.status_code == 302
    link = DepositorLink.objects.get(depositor=family)
    assert (link.inmate, link.entered_inmate_number) == (inmate, "D0000005")


def test_staff_intake_stores_the_number_canonical():
    from facilities import services as facility_services

    facility = FacilityFactory()
    inmate = facility_services.intake_inmate(
        facility=facility, inmate_number=" ｄ0000009", surname="Li", pin="4321"
    )
    assert inmate.inmate_number == "D0000009"
