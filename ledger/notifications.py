"""Emails to the people who may decide a waiting request: when a money request that needs a
second trust officer is filed (or a policy change that needs a second facility administrator),
each of them gets one email at once, in their language, with a link to the request. Never the
requester.

Queued by the requests service with ``transaction.on_commit`` (a request rolled back sends
nothing) as a Celery task that takes the request's id. The task sends nothing for a request
that was decided before it ran.
"""

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from accounts import selectors as people
from commissary.money import format_fen
from facilities.models import policy_value_display

from .models import StaffRequest

logger = logging.getLogger(__name__)


def email_approvers_on_commit(staff_request_id: int) -> None:
    """Queue the email to the request's approvers once the current transaction commits."""
    transaction.on_commit(lambda: _queue(staff_request_id))


def _queue(staff_request_id: int) -> None:
    try:
        email_approvers_of_request.delay(staff_request_id=staff_request_id)
    except Exception:  # the request is filed; a broker outage must not fail the page
        logger.exception("the approvers of request %s were not emailed", staff_request_id)


def _language_of(user) -> str:
    return getattr(user, "language", "") or settings.LANGUAGE_CODE


def _message(staff_request: StaffRequest) -> tuple[str, str]:
    link = settings.SITE_URL + reverse("admin:ledger_staffrequest_change", args=[staff_request.pk])
    lines = [
        _("%(person)s asked for this at %(facility)s and it waits for your decision:")
        % {
            "person": staff_request.requested_by.get_full_name()
            or staff_request.requested_by.get_username(),
            "facility": staff_request.facility.name,
        },
        "",
        _("What: %(kind)s") % {"kind": staff_request.get_kind_display()},
    ]
    if staff_request.inmate_id is not None:
        lines.append(_("Inmate: %(inmate)s") % {"inmate": staff_request.inmate})
    if staff_request.amount_fen:
        lines.append(
            _("Amount: %(amount)s")
            % {"amount": format_fen(staff_request.amount_fen, staff_request.facility.currency)}
        )
    for field, change in staff_request.policy_changes.items():
        label = staff_request.facility._meta.get_field(field).verbose_name
        currency = staff_request.facility.currency
        before = policy_value_display(field, change["from"], currency)
        after = policy_value_display(field, change["to"], currency)
        lines.append(f"{label}: {before} → {after}")
    lines += [
        _("Reason: %(reason)s") % {"reason": staff_request.reason},
        "",
        _("Approve or reject it here: %(link)s") % {"link": link},
    ]
    subject = _("Request #%(id)d waits for your approval") % {"id": staff_request.pk}
    return subject, "\n".join(lines)


def email_approvers(*, staff_request_id: int) -> int:
    """Email each person who may decide the waiting request, one email each, in their own
    language. Returns how many were sent (none once the request has been decided)."""
    staff_request = (
        StaffRequest.objects.select_related("facility", "inmate", "requested_by")
        .filter(pk=staff_request_id, state=StaffRequest.State.REQUESTED)
        .first()
    )
    if staff_request is None:
        return 0
    approvers = people.approvers_of(
        facility_id=staff_request.facility_id,
        requester_id=staff_request.requested_by_id,
        policy=staff_request.is_policy_change,
    )
    sent = 0
    for approver in approvers:
        if not approver.email:
            continue
        with translation.override(_language_of(approver)):
            subject, body = _message(staff_request)
        EmailMessage(subject=subject, body=body, to=[approver.email]).send()
        sent += 1
    return sent


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OSError,),
    retry_backoff=30,
    max_retries=5,
)
def email_approvers_of_request(staff_request_id: int) -> int:
    """Thin wrapper over ``email_approvers`` (queued when a waiting request is filed)."""
    return email_approvers(staff_request_id=staff_request_id)
