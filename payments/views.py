"""Provider callbacks, the sandbox provider's own payment page, and the public receipt
verification page. Thin: each calls one service."""

import logging

from axes.helpers import get_client_ip_address
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from commissary import errors
from ledger.models import Deposit

from .models import Payment, SandboxCharge
from .providers import get_provider
from .providers.sandbox import SandboxProvider
from .receipts import qr_data_uri
from .services import record_callback

logger = logging.getLogger(__name__)


def _provider_or_none(name: str):
    try:
        return get_provider(name)
    except errors.DomainError:
        return None


@csrf_exempt  # the provider's server calls this; its signature is the authentication
@require_POST
def callback(request, provider: str):
    """Answers in the provider's own terms where it has them (Alipay's ``success``, WeChat
    Pay's 204), and only after ``record_callback`` has committed the deposit's new state."""
    answers = _provider_or_none(provider)
    try:
        payment = record_callback(
            provider_name=provider, headers=request.headers, body=request.body
        )
    except errors.DomainError as refusal:
        logger.warning("refused a %s payment callback: %s", provider, refusal.message)
        if hasattr(answers, "refuse"):
            return answers.refuse(refusal)
        return JsonResponse({"error": refusal.code}, status=400)
    if hasattr(answers, "acknowledge"):
        return answers.acknowledge(payment)
    return JsonResponse({"status": payment.status})


@login_required
@require_http_methods(["GET"])
def provider_pay(request, provider: str, reference: str):
    """A real provider's payment step for the depositor's own payment: a redirect to the
    provider's page, or WeChat Pay's QR code to scan. Anyone else sees a 404."""
    answers = _provider_or_none(provider)
    payment = (
        Payment.objects.select_related("deposit", "deposit__facility")
        .filter(provider=provider, provider_reference=reference, deposit__depositor=request.user)
        .first()
    )
    if payment is None or not hasattr(answers, "checkout"):
        raise Http404()
    deposit_url = reverse("family:deposit_detail", args=[payment.deposit.reference])
    if payment.status != Payment.Status.PENDING or payment.deposit.status != Deposit.Status.CREATED:
        return redirect(deposit_url)
    try:
        checkout = answers.checkout(
            payment,
            is_mobile=_is_phone(request),
            client_ip=get_client_ip_address(request) or "",
            return_url=request.build_absolute_uri(deposit_url),
        )
    except errors.DomainError as refusal:
        logger.warning("%s checkout failed for payment %s: %s", provider, payment.pk, refusal)
        return render(
            request,
            "payments/provider_pay.html",
            {"payment": payment, "deposit": payment.deposit, "unavailable": True},
            status=502,
        )
    context = {"payment": payment, "deposit": payment.deposit, "provider": provider}
    if checkout["kind"] == "native":
        context["qr_data_uri"] = qr_data_uri(checkout["url"])
    else:
        # A page with a link the browser follows at once, not a redirect: the family arrives
        # here from a form, and the CSP's form-action 'self' would stop a redirect chain that
        # leaves the site.
        context["continue_url"] = checkout["url"]
    return render(request, "payments/provider_pay.html", context)


def _is_phone(request) -> bool:
    agent = request.headers.get("User-Agent", "")
    return any(word in agent for word in ("Mobile", "Android", "iPhone"))


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
    """The sandbox's payment page (Pay / Cancel / Fail). On any choice the signed notification
    goes straight to the callback service, verified as a provider's would be."""
    charge, payment = _sandbox_charge_for(request, reference)
    if request.method == "POST":
        outcome = _ACTIONS.get(request.POST.get("action", ""))
        if outcome is not None:
            SandboxCharge.objects.filter(pk=charge.pk, status=SandboxCharge.Status.OPEN).update(
                status=outcome
            )
            charge.refresh_from_db()
            now = timezone.now()
            headers, body = SandboxProvider().signed_notification(charge, now=now)
            try:
                # Verified and applied by the callback service, in this process: no HTTP
                # request to the site's own address from inside this request.
                record_callback(provider_name=SandboxProvider.name, headers=headers, body=body)
            except errors.DomainError as refusal:
                logger.warning("the sandbox notification was refused: %s", refusal.message)
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
