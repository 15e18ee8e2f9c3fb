"""Receipts for credited deposits: the page, the email, and the QR code of the public
verification URL. The verification page shows only whether a reference is a genuine
credited deposit, its amount, date and facility: nothing about the inmate or the payer."""

import base64
import io
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from accounts.models import DepositorLink
from ledger.models import Deposit


@dataclass(frozen=True)
class Receipt:
    deposit: Deposit
    inmate_number: str
    inmate_name: str
    facility_name: str
    credited_at_local: object
    timezone_name: str
    verify_url: str
    qr_data_uri: str

    @property
    def total_fen(self) -> int:
        return self.deposit.amount_fen + self.deposit.fee_fen


def verification_url(reference) -> str:
    return settings.SITE_URL + reverse("receipt_verify", args=[reference])


def qr_data_uri(text: str) -> str:
    """A QR code as an SVG data: URI (the strict CSP allows ``img-src data:``)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def receipt_for(*, deposit: Deposit, request=None) -> Receipt | None:
    """The receipt of a credited deposit, with the inmate's name and number as the depositor
    entered them when linking; None for a deposit not credited."""
    if deposit.status != Deposit.Status.CREDITED:
        return None
    link = (
        DepositorLink.objects.filter(depositor_id=deposit.depositor_id, inmate_id=deposit.inmate_id)
        .only("entered_inmate_number", "entered_surname")
        .first()
    )
    facility = deposit.facility
    url = verification_url(deposit.reference)
    return Receipt(
        deposit=deposit,
        inmate_number=link.entered_inmate_number if link else deposit.inmate.inmate_number,
        inmate_name=link.entered_surname if link else deposit.inmate.surname,
        facility_name=facility.name,
        credited_at_local=deposit.resolved_at.astimezone(ZoneInfo(facility.timezone)),
        timezone_name=facility.timezone,
        verify_url=url,
        qr_data_uri=qr_data_uri(url),
    )


def send_receipt_email(*, payment_id: int) -> None:
    deposit = (
        Deposit.objects.select_related("facility", "inmate", "depositor")
        .filter(payment__pk=payment_id)
        .first()
    )
    if deposit is None or deposit.depositor is None or not deposit.depositor.email:
        return
    receipt = receipt_for(deposit=deposit)
    if receipt is None:
        return
    # Both languages in one email: no depositor's language is recorded, and the task that
    # sends it has no request to take one from.
    subjects, texts, sections = [], [], []
    for language in ("zh-hans", "en"):
        with translation.override(language):
            context = {"receipt": receipt}
            subjects.append(render_to_string("family/email/receipt_subject.txt", context).strip())
            texts.append(render_to_string("family/email/receipt.txt", context))
            sections.append(render_to_string("family/email/receipt_section.html", context))
    html = render_to_string("family/email/receipt.html", {"receipt": receipt, "sections": sections})
    send_mail(
        " / ".join(subjects),
        "\n\n".join(texts),
        None,
        [deposit.depositor.email],
        html_message=html,
    )
