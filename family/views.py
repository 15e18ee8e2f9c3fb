"""The family's pages: home, linking, the deposit form, history, receipts and the account.

Thin: each parses its input, calls one service or selector and renders. Every page under
``/family/`` needs a signed-in depositor and shows only that depositor's own links, deposits
and receipts; anything else answers as if it did not exist (404).
"""

import json
import uuid

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods
from django_ratelimit.core import is_ratelimited

from accounts import selectors
from commissary import errors
from ledger import selectors as ledger_selectors
from ledger.models import Deposit
from payments import receipts
from payments import services as payments
from payments.amounts import fen_to_yuan
from payments.providers import available_provider_names

from . import services
from .forms import CloseAccountForm, DepositAmountForm, DepositConfirmForm, LinkForm, yuan_to_fen
from .templatetags.family import shown_status


def home(request):
    links = selectors.links_of(request.user) if request.user.is_authenticated else []
    return render(request, "family/home.html", {"links": links})


def _link_rate(group, request):
    return f"{settings.LINK_ATTEMPTS_PER_HOUR}/h"


def _too_many_link_attempts(request) -> bool:
    """Per depositor and per address: counted on every attempt, matched or not."""
    limited = False
    for key in ("user", "ip"):
        limited |= is_ratelimited(
            request, group=f"family-link-{key}", key=key, rate=_link_rate, increment=True
        )
    return limited


@login_required
@require_http_methods(["GET", "POST"])
def link_new(request):
    form = LinkForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if _too_many_link_attempts(request):
            form.add_error(None, _("Too many attempts. Wait an hour, then try again."))
            return render(request, "family/link_form.html", {"form": form}, status=429)
        try:
            link = services.link_inmate(
                depositor=request.user,
                facility_id=form.cleaned_data["facility"].pk,
                inmate_number=form.cleaned_data["inmate_number"],
                surname=form.cleaned_data["surname"],
            )
        except errors.DomainError as refusal:
            form.add_error(None, str(refusal.message))
        else:
            if link.is_approved:
                messages.success(request, _("Linked. You can send money now."))
            else:
                messages.info(
                    request,
                    _("Your link is waiting for the facility's approval. We will show it here."),
                )
            return redirect("family:home")
    return render(request, "family/link_form.html", {"form": form})


def _deposit_context(request, link_id):
    try:
        link = selectors.deposit_link_for(depositor=request.user, link_id=link_id)
    except errors.DomainError:
        raise Http404() from None
    room = ledger_selectors.deposit_room(inmate=link.inmate)
    facility = link.inmate.facility
    return {
        "link": link,
        "facility": facility,
        "room": room,
        "fee_percent": f"{facility.deposit_fee_rate_bp / 100:g}",
        "providers": available_provider_names(facility.pk),
    }


@login_required
@require_http_methods(["GET", "POST"])
def deposit_new(request, link_id: int):
    """Step 1: the amount, with the room, the fee rule and the limits shown. Step 2 (a POST
    that passed): the amount, fee and total to pay, before anything is reserved."""
    context = _deposit_context(request, link_id)
    form = DepositAmountForm(request.POST or None, initial=_amount_to_retry(request))
    if request.method == "POST" and form.is_valid():
        amount_fen = form.cleaned_data["amount"]
        if amount_fen > context["room"].can_send_fen:
            form.add_error(
                "amount",
                payments.most_that_can_be_sent_message(
                    context["room"].can_send_fen, context["facility"].currency
                ),
            )
        else:
            fee_fen = context["facility"].deposit_fee_fen(amount_fen)
            confirm = DepositConfirmForm(
                initial={"amount_fen": amount_fen, "idempotency_key": uuid.uuid4()},
                providers=context["providers"],
            )
            return render(
                request,
                "family/deposit_confirm.html",
                {
                    **context,
                    "confirm": confirm,
                    "amount_fen": amount_fen,
                    "fee_fen": fee_fen,
                    "total_fen": amount_fen + fee_fen,
                },
            )
    return render(request, "family/deposit_form.html", {**context, "form": form})


def _amount_to_retry(request) -> dict:
    """The amount a "try again" link carries (``?amount=123.45``), shown in the form to check
    and send again; anything unreadable is ignored (the form starts empty)."""
    try:
        return {"amount": fen_to_yuan(yuan_to_fen(request.GET.get("amount", "")))}
    except forms.ValidationError:
        return {}


@login_required
@require_http_methods(["POST"])
def deposit_confirm(request, link_id: int):
    """Reserve under both caps and go to the provider's payment page."""
    context = _deposit_context(request, link_id)
    confirm = DepositConfirmForm(request.POST, providers=context["providers"])
    if not confirm.is_valid():
        return redirect("family:deposit_new", link_id=link_id)
    try:
        _deposit, pay_url = payments.start_deposit(
            depositor=request.user,
            link_id=context["link"].pk,
            amount_fen=confirm.cleaned_data["amount_fen"],
            idempotency_key=str(confirm.cleaned_data["idempotency_key"]),
            provider_name=confirm.cleaned_data["provider"],
        )
    except errors.DomainError as refusal:
        context["room"] = ledger_selectors.deposit_room(inmate=context["link"].inmate)
        return render(
            request,
            "family/deposit_form.html",
            {**context, "form": DepositAmountForm(), "refusal": refusal.message},
            status=422,
        )
    return redirect(pay_url)


def _own_deposits(request):
    return (
        Deposit.objects.filter(depositor=request.user)
        .select_related("inmate", "facility", "payment")
        .order_by("-created_at")
    )


@login_required
def deposit_history(request):
    return render(request, "family/history.html", {"deposits": _own_deposits(request)[:200]})


@login_required
def deposit_detail(request, reference):
    deposit = _own_deposits(request).filter(reference=reference).first()
    if deposit is None:
        raise Http404()
    receipt = receipts.receipt_for(deposit=deposit, request=request)
    return render(
        request,
        "family/deposit_detail.html",
        {"deposit": deposit, "receipt": receipt, "retry_url": _retry_url(request, deposit)},
    )


def _retry_url(request, deposit) -> str:
    """For a payment the family cancelled: the deposit form for the same inmate with the same
    amount filled in, if the depositor may still send there (an approved link, not blocked);
    else nothing."""
    if shown_status(deposit) != "cancelled":
        return ""
    for link in selectors.links_of(request.user).filter(inmate_id=deposit.inmate_id):
        try:
            selectors.deposit_link_for(depositor=request.user, link_id=link.pk)
        except errors.DomainError:
            continue
        url = reverse("family:deposit_new", args=[link.pk])
        return f"{url}?{urlencode({'amount': fen_to_yuan(deposit.amount_fen)})}"
    return ""


@login_required
@require_http_methods(["GET", "POST"])
def account(request):
    form = CloseAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # Through authenticate(), so django-axes counts a wrong password here as it counts one
        # at sign-in; once locked out, even the right password is refused and its middleware
        # answers with the lockout page.
        confirmed = authenticate(
            request, email=request.user.email, password=form.cleaned_data["password"]
        )
        if confirmed is None or confirmed.pk != request.user.pk:
            form.add_error("password", _("This is not your password."))
        else:
            try:
                services.close_depositor_account(depositor=request.user)
            except errors.DomainError as refusal:
                form.add_error(None, str(refusal.message))
            else:
                logout(request)
                messages.success(request, _("Your account is closed."))
                return redirect("family:home")
    return render(request, "family/account.html", {"form": form})


@login_required
def account_data(request):
    exported = services.export_depositor_data(
        depositor=request.user, remote_addr=request.META.get("REMOTE_ADDR")
    )
    body = json.dumps(exported, ensure_ascii=False, indent=2)
    answer = HttpResponse(body, content_type="application/json; charset=utf-8")
    answer["Content-Disposition"] = 'attachment; filename="commissary-my-data.json"'
    return answer
