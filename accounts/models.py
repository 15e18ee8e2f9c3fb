"""People who sign in. Facility staff and family depositors are both users of one custom
model, so depositor sign-up, depositor-inmate links and staff facility assignment hang off it.
The family's pages and the staff decisions on links live in the ``family`` app; the link and
block tables stay here (see ``DepositorLink``).

A staff member works only at the facilities assigned to them (``FacilityAssignment``): the
admin shows them nothing else, and the ledger accepts their money requests and approvals only
there (``accounts.selectors``)."""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """A staff member (``is_staff``) or a family depositor."""

    email = models.EmailField("email address", blank=True, db_index=True)
    facilities = models.ManyToManyField(
        "facilities.Facility",
        through="FacilityAssignment",
        related_name="staff",
        blank=True,
        help_text="The facilities a staff member works at and may see.",
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class FacilityAssignment(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="facility_assignments"
    )
    facility = models.ForeignKey(
        "facilities.Facility", on_delete=models.CASCADE, related_name="staff_assignments"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "facility"], name="assignment_once_per_pair")
        ]

    def __str__(self):
        return f"{self.user} @ {self.facility}"


class DepositorLink(models.Model):
    """A family depositor's link to an inmate, made by matching facility, inmate number and
    surname. Deposits are possible only over an approved link. The number and surname are kept
    as the depositor typed them: receipts show them so.

    The table stays in ``accounts`` (below the ledger) although ``family`` writes it:
    ``payments`` checks the link and the block when a deposit starts and prints the link on
    receipts, and ``payments`` sits below ``family``; moving it would also move its
    migrations' history for no gain."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for the facility's approval")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    depositor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="depositor_links"
    )
    inmate = models.ForeignKey(
        "facilities.Inmate", on_delete=models.PROTECT, related_name="depositor_links"
    )
    entered_inmate_number = models.CharField(max_length=32)
    entered_surname = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    decision_reason = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["depositor", "inmate"], name="link_once_per_pair")
        ]

    def __str__(self):
        return f"{self.depositor} → {self.inmate} ({self.status})"

    @property
    def is_approved(self) -> bool:
        return self.status == self.Status.APPROVED


class DepositorBlock(models.Model):
    """Staff stopped a depositor at a facility: no new links, no deposits there. Kept in
    ``accounts`` beside ``DepositorLink``, for the same reason."""

    depositor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="depositor_blocks"
    )
    facility = models.ForeignKey(
        "facilities.Facility", on_delete=models.CASCADE, related_name="depositor_blocks"
    )
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["depositor", "facility"], name="block_once_per_pair")
        ]

    def __str__(self):
        return f"{self.depositor} blocked at {self.facility}"
