"""Provider callbacks, the sandbox provider's own payment page, and the public receipt
verification page. Thin: each calls one service."""

import logging

from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from commissary import errors
from ledger.models import Deposit

from .models import Payment, SandboxCharge
from .providers import get_provider
from .providers.sandbox import SandboxProvider
from .services import record_callback

logger = logging.getLogger(__name__)


@csrf_exempt  # the provider's server calls this; its signature is the authentication
@require_POST
def callback(request, provider: str):
    try:
        payment = record_callback(
            provider_name=provider, headers=request.headers, body=request.body
        )
    except errors.DomainError as refusal:
        logger.warning("refused a %s payment callback: %s", provider, refusal.message)
        return JsonResponse({"error": refusal.code}, status=400)
    return JsonResponse({"status": payment.status})


def _sandbox_charge_for(request, reference: str) -> tuple[SandboxCharge, Payment]:
    """The sandbox page belongs to the depositor who started the payment; anyone else sees
    nothing (404), as for a missing one."""
    try:
        get_provider(SandboxProvider.name)
    except errors.DomainError:
        raise Http404() from None
    payment = (
        Payment.objects.select_related("deposit", "deposit__facility")
        .filter(
            provider=SandboxProvider.name,
            provider_reference=reference,
            deposit__depositor=request.user,
        )
        .first()
    )
    charge = SandboxCharge.objects.filter(reference=reference).first()
    if payment is None or charge is None:
        raise Http404()
    return charge, payment


_ACTIONS = {
    "pay": SandboxCharge.Status.PAID,
    "cancel": SandboxCharge.Status.CANCELLED,
    "fail": SandboxCharge.Status.FAILED,
}


@login_required
@require_http_methods(["GET", "POST"])
def sandbox_pay(request, reference: str):
    """The sandbox's payment page (Pay / Cancel / Fail). On any choice it notifies the app
    with a real signed HTTP callback, as a provider's server would."""
    charge, payment = _sandbox_charge_for(request, reference)
    if request.method == "POST":
        outcome = _ACTIONS.get(request.POST.get("action", ""))
        if outcome is not None:
            SandboxCharge.objects.filter(pk=charge.pk, status=SandboxCharge.Status.OPEN).update(
                status=outcome
            )
            charge.refresh_from_db()
            SandboxProvider().send_callback(charge, now=timezone.now())
        return redirect("family:deposit_detail", reference=payment.deposit.reference)
    return render(
        request,
        "payments/sandbox_pay.html",
        {"charge": charge, "payment": payment, "deposit": payment.deposit},
    )


def receipt_verify(request, reference):
    deposit = (
        Deposit.objects.select_related("facility")
        .filter(reference=reference, status=Deposit.Status.CREDITED)
        .first()
    )
    return render(
        request,
        "family/receipt_verify.html",
        {"deposit": deposit, "reference": reference},
        status=200 if deposit else 404,
    )
