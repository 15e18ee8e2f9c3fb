"""An auto-accepted pair skips only the kinds of rule it names (none named: every rule): the
other rules still fire and hold the deposit, and the hold records only them. What a pair skips
is edited in the admin, in both languages, and every change of it is in the audit trail."""

import re

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from ledger import services as ledger
from ledger.models import Deposit
from monitoring.models import AutoAccept, Hold, Rule
from monitoring.screening import RuleScreener
from payments import payers
from tests.factories import InmateFactory
from tests.ledger.helpers import key

from .helpers import paid, rule_at

pytestmark = pytest.mark.django_db

Kind = Rule.Kind
HELD, CREDITED = Deposit.Status.HELD, Deposit.Status.CREDITED
SHARED_CARD = "sandbox-shared-account"
TICKED = r'name="skipped_kinds" value="(\w+)"[^>]*\bchecked'


def pair(inmate, *, family=None, payer_id=None, kinds=()) -> AutoAccept:
    source = payers.fingerprint("sandbox", payer_id) if payer_id else ""
    return AutoAccept.objects.create(
        facility=inmate.facility,
        depositor=family,
        payer_fingerprint=source,
        payer_label=payers.masked(payer_id) if payer_id else "",
        inmate=inmate,
        reason="Mother, checked in person",
        skipped_kinds=list(kinds),
    )


def status_of(payment) -> str:
    return Deposit.objects.get(pk=payment.deposit_id).status


def fired_on(payment) -> list[int]:
    hold = Hold.objects.get(deposit_id=payment.deposit_id)
    return sorted(version.rule_id for version in hold.fired.all())


def test_a_pair_naming_a_kind_skips_it_while_a_rule_of_another_kind_still_holds(
    client, inmate, family
):
    at_least = rule_at(inmate.facility, Kind.AMOUNT_AT_LEAST, amount_fen=10_000)
    odd = rule_at(inmate.facility, Kind.NOT_WHOLE_YUAN)
    pair(inmate, family=family, kinds=[Kind.AMOUNT_AT_LEAST])
    # Only the skipped kind fires: credited at once.
    assert status_of(paid(client, inmate, 10_000, user=family)) == CREDITED
    # Both fire: held, for the rule the pair does not skip only.
    both = paid(client, inmate, 10_050, user=family)
    assert status_of(both) == HELD
    assert fired_on(both) == [odd.pk]
    # The other kind alone still holds the pair's deposit.
    alone = paid(client, inmate, 5_050, user=family)
    assert status_of(alone) == HELD and fired_on(alone) == [odd.pk]
    # Another depositor to the same inmate is not the pair: the named kind holds them.
    stranger = paid(client, inmate, 10_000)
    assert status_of(stranger) == HELD and fired_on(stranger) == [at_least.pk]


def test_a_pair_naming_no_kind_skips_every_rule(client, inmate, family):
    rule_at(inmate.facility, Kind.AMOUNT_AT_LEAST, amount_fen=10_000)
    rule_at(inmate.facility, Kind.NOT_WHOLE_YUAN)
    rule_at(inmate.facility, Kind.MONITORED_INMATE, inmate=inmate)
    pair(inmate, family=family)
    assert status_of(paid(client, inmate, 10_050, user=family)) == CREDITED
    assert status_of(paid(client, inmate, 10_050)) == HELD  # not the pair


def test_a_source_pair_skips_its_kinds_and_the_depositors_pair_its_own(client, inmate, family):
    rule_at(inmate.facility, Kind.AMOUNT_AT_LEAST, amount_fen=10_000)
    odd = rule_at(inmate.facility, Kind.NOT_WHOLE_YUAN)
    pair(inmate, family=family, kinds=[Kind.AMOUNT_AT_LEAST])
    pair(inmate, payer_id=SHARED_CARD, kinds=[Kind.NOT_WHOLE_YUAN])
    # From the family on the shared card: each pair skips its kind, nothing is left.
    assert status_of(paid(client, inmate, 10_050, user=family, payer_id=SHARED_CARD)) == CREDITED
    # From the family on their own card: only the family's pair applies.
    own = paid(client, inmate, 10_050, user=family)
    assert status_of(own) == HELD and fired_on(own) == [odd.pk]


def test_a_switched_off_pair_skips_nothing_it_names(client, inmate, family):
    rule_at(inmate.facility, Kind.NOT_WHOLE_YUAN)
    pair(inmate, family=family, kinds=[Kind.NOT_WHOLE_YUAN])
    AutoAccept.objects.update(is_active=False)
    assert status_of(paid(client, inmate, 5_050, user=family)) == HELD


def test_the_pairs_cost_one_statement_and_only_when_a_rule_fired(
    inmate, family, django_assert_num_queries
):
    rule_at(inmate.facility, Kind.NOT_WHOLE_YUAN)
    pair(inmate, family=family, kinds=[Kind.AMOUNT_AT_LEAST])
    pair(inmate, payer_id=SHARED_CARD, kinds=[Kind.NEW_DEPOSITOR])

    def reserved(amount_fen):
        deposit = ledger.reserve_deposit(
            inmate_id=inmate.pk,
            amount_fen=amount_fen,
            idempotency_key=key(),
            idempotency_scope=f"depositor:{family.pk}",
            depositor_id=family.pk,
        )
        return Deposit.objects.select_related("facility").get(pk=deposit.pk)

    def fired(deposit):
        source = payers.fingerprint("sandbox", SHARED_CARD)
        screened = RuleScreener().fired(
            deposit=deposit, payer_fingerprint=source, now=timezone.now()
        )
        return [rule.kind for rule in screened]

    whole, odd = reserved(5_000), reserved(5_050)
    with django_assert_num_queries(1):  # the rule look-up; nothing fired, no pair is read
        assert fired(whole) == []
    with django_assert_num_queries(2) as captured:  # and the pairs, in one statement
        assert fired(odd) == [Kind.NOT_WHOLE_YUAN]
    assert 'FROM "monitoring_autoaccept"' in captured[1]["sql"]


def change_form(pair_row, inmate, **changes) -> dict:
    return {
        "facility": inmate.facility.pk,
        "depositor": pair_row.depositor_id or "",
        "payer_provider": "",
        "payer_id": "",
        "inmate": inmate.pk,
        "reason": pair_row.reason,
        "is_active": "on",
        **changes,
    }


def test_every_change_of_what_a_pair_skips_is_in_the_audit_trail(client, inmate, family, officer):
    existing = pair(inmate, family=family)
    client.force_login(officer)
    url = f"/admin/monitoring/autoaccept/{existing.pk}/change/"
    lists = (
        [Kind.NOT_WHOLE_YUAN, Kind.AMOUNT_AT_LEAST],  # ticked in any order, kept in the kinds'
        [Kind.AMOUNT_AT_LEAST, Kind.NOT_WHOLE_YUAN],  # the same: no change recorded
        [Kind.MONITORED_INMATE],
        [],
    )
    for kinds in lists:
        answer = client.post(url, change_form(existing, inmate, skipped_kinds=kinds))
        assert answer.status_code == 302, answer.content.decode()[:2000]
    existing.refresh_from_db()
    assert existing.skipped_kinds == []
    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(AutoAccept),
        object_pk=str(existing.pk),
        action=LogEntry.Action.UPDATE,
    ).order_by("timestamp", "pk")
    history = [
        entry.changes["skipped_kinds"] for entry in entries if "skipped_kinds" in entry.changes
    ]
    assert history == [
        [[], [Kind.AMOUNT_AT_LEAST, Kind.NOT_WHOLE_YUAN]],
        [[Kind.AMOUNT_AT_LEAST, Kind.NOT_WHOLE_YUAN], [Kind.MONITORED_INMATE]],
        [[Kind.MONITORED_INMATE], []],
    ]
    assert {entry.actor for entry in entries} == {officer}
    # Switching it off is in the same trail, next to what it skipped.
    client.post(url, {**change_form(existing, inmate), "is_active": ""})
    last = entries.last()
    assert last.changes["is_active"] == [True, False]


@pytest.mark.parametrize(
    ("language", "label", "kind", "every"),
    [
        ("en", "Rules skipped", "Amount not in whole yuan", "Every rule"),
        ("zh-hans", "跳过的规则", "金额不是整元", "所有规则"),
    ],
)
def test_the_admin_shows_and_edits_the_kinds_a_pair_skips_in_both_languages(
    client, inmate, family, officer, language, label, kind, every
):
    client.force_login(officer)
    headers = {"HTTP_ACCEPT_LANGUAGE": language}
    form = client.get("/admin/monitoring/autoaccept/add/", **headers).content.decode()
    assert label in form and kind in form
    assert 'name="skipped_kinds" value="not_whole_yuan"' in form
    saved = client.post(
        "/admin/monitoring/autoaccept/add/",
        {
            "facility": inmate.facility.pk,
            "depositor": family.pk,
            "payer_provider": "",
            "payer_id": "",
            "inmate": inmate.pk,
            "reason": "Mother, checked in person",
            "skipped_kinds": [Kind.NOT_WHOLE_YUAN],
            "is_active": "on",
        },
        **headers,
    )
    assert saved.status_code == 302, saved.content.decode()[:2000]
    named = AutoAccept.objects.get()
    assert named.skipped_kinds == [Kind.NOT_WHOLE_YUAN]
    changed = client.get(f"/admin/monitoring/autoaccept/{named.pk}/change/", **headers)
    ticked = re.findall(TICKED, changed.content.decode())
    assert ticked == [Kind.NOT_WHOLE_YUAN]
    pair(InmateFactory(facility=inmate.facility), family=family)  # names none
    listing = client.get("/admin/monitoring/autoaccept/", **headers).content.decode()
    assert label in listing and kind in listing and every in listing
    refused = client.post(
        f"/admin/monitoring/autoaccept/{named.pk}/change/",
        change_form(named, inmate, skipped_kinds=["no_such_kind"]),
        **headers,
    )
    assert refused.status_code == 200  # only the kinds there are
    named.refresh_from_db()
    assert named.skipped_kinds == [Kind.NOT_WHOLE_YUAN]
