"""Monitoring scenarios: a rule at a facility, a deposit paid through the sandbox callback."""

from accounts.models import DepositorLink
from monitoring import services
from monitoring.models import Rule
from payments import services as payments
from payments.models import Payment, SandboxCharge
from tests.factories import StaffFactory
from tests.ledger.helpers import key
from tests.payments.helpers import approved_link, callback_body, depositor, post_callback


def rule_at(facility, kind, *, staff=None, **parameters) -> Rule:
    rule = Rule(facility=facility, kind=kind, **parameters)
    return services.save_rule(rule=rule, staff=staff or StaffFactory(facilities=[facility]))


def started(inmate, amount_fen, *, user=None) -> Payment:
    user = user or depositor()
    link = DepositorLink.objects.filter(depositor=user, inmate=inmate).first()
    link = link or approved_link(user, inmate)
    reserved, _url = payments.start_deposit(
        depositor=user, link_id=link.pk, amount_fen=amount_fen, idempotency_key=key()
    )
    return Payment.objects.select_related("deposit").get(deposit=reserved)


def paid(client, inmate, amount_fen, *, user=None, payer_id=None) -> Payment:
    """A deposit started and paid: the sandbox's signed callback settles it. The sandbox names
    one fake payer per depositor; ``payer_id`` pays from another (a shared account)."""
    payment = started(inmate, amount_fen, user=user)
    if payer_id is not None:
        SandboxCharge.objects.filter(reference=payment.provider_reference).update(payer_id=payer_id)
    answer = post_callback(client, callback_body(payment))
    assert answer.status_code == 200, answer.content
    return Payment.objects.select_related("deposit").get(pk=payment.pk)
