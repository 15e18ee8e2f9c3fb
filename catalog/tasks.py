"""Celery tasks of the commissary: thin wrappers over ``catalog.services``.

``escalate_overdue_disputes`` marks every open dispute past its deadline as escalated (the
queue shows it as overdue) and emails the administrators of each facility concerned, once
per dispute. It runs hourly (``catalog.schedules``; staff may re-time it in the admin)."""

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.utils.translation import gettext as _
from django.utils.translation import override

from accounts.roles import FACILITY_ADMIN

from .models import Dispute
from .services import disputes


@shared_task
def escalate_overdue_disputes() -> int:
    escalated = disputes.escalate_overdue_disputes()
    by_facility: dict[int, list[Dispute]] = {}
    for dispute in Dispute.objects.filter(pk__in=escalated).select_related("facility"):
        by_facility.setdefault(dispute.facility_id, []).append(dispute)
    for facility_id, overdue in by_facility.items():
        emails = list(
            get_user_model()
            .objects.filter(
                is_active=True,
                groups__name=FACILITY_ADMIN.group_name,
                facility_assignments__facility_id=facility_id,
            )
            .exclude(email="")
            .values_list("email", flat=True)
            .distinct()
        )
        if not emails:
            continue
        with override(settings.LANGUAGE_CODE):
            send_mail(
                _("Commissary disputes past their deadline at %(facility)s")
                % {"facility": overdue[0].facility.name},
                "\n".join(
                    _("Dispute #%(id)d, order #%(order)d: answer was due %(deadline)s.")
                    % {
                        "id": dispute.pk,
                        "order": dispute.order_id,
                        "deadline": dispute.deadline.isoformat(),
                    }
                    for dispute in overdue
                ),
                None,
                emails,
            )
    return len(escalated)
