"""People who sign in. Facility staff and family depositors are both users of one custom
model, so depositor sign-up, depositor-inmate links and staff facility assignment hang off it.

A staff member works only at the facilities assigned to them (``FacilityAssignment``): the
admin shows them nothing else, and the ledger accepts their money requests and approvals only
there (``accounts.selectors``)."""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


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
