"""People who sign in. Facility staff and family depositors are both users of one custom
model, so depositor sign-up, depositor-inmate links and staff facility assignment hang off it.
The family's pages and the staff decisions on links live in the ``family`` app; the link and
block tables stay here (see ``DepositorLink``).

A staff member works only at the facilities assigned to them (``FacilityAssignment``): the
admin shows them nothing else, and the ledger accepts their money requests and approvals only
there (``accounts.selectors``)."""

import pgtrigger
from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """A staff member (``is_staff``) or a family depositor."""

    email = models.EmailField(_("email address"), blank=True, db_index=True)
    facilities = models.ManyToManyField(
        "facilities.Facility",
        through="FacilityAssignment",
        related_name="staff",
        blank=True,
        help_text=_("The facilities a staff member works at and may see."),
        verbose_name=_("facilities"),
    )
    # A staff member's own choices (``reports.views.preferences``): the daily email of what
    # waits at their facilities, and the language it is written in (blank: the site's).
    receives_digest = models.BooleanField(
        _("daily email of what waits for me"),
        default=True,
        help_text=_("Sent each morning when something waits at your facilities."),
    )
    language = models.CharField(
        _("language of emails"),
        max_length=10,
        blank=True,
        help_text=_("A code of LANGUAGES (zh-hans, en); blank: the site's language."),
    )

    class Meta(AbstractUser.Meta):
        verbose_name = _("user")
        verbose_name_plural = _("users")
        swappable = "AUTH_USER_MODEL"


class FacilityAssignment(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="facility_assignments",
        verbose_name=_("user"),
    )
    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.CASCADE,
        related_name="staff_assignments",
        verbose_name=_("facility"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("facility assignment")
        verbose_name_plural = _("facility assignments")
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
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="depositor_links",
        verbose_name=_("depositor"),
    )
    inmate = models.ForeignKey(
        "facilities.Inmate",
        on_delete=models.PROTECT,
        related_name="depositor_links",
        verbose_name=_("inmate"),
    )
    entered_inmate_number = models.CharField(max_length=32, verbose_name=_("entered inmate number"))
    entered_surname = models.CharField(max_length=100, verbose_name=_("entered surname"))
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, verbose_name=_("status")
    )
    decision_reason = models.TextField(blank=True, verbose_name=_("decision reason"))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(null=True, blank=True, verbose_name=_("decided at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("depositor link")
        verbose_name_plural = _("depositor links")
        constraints = [
            models.UniqueConstraint(fields=["depositor", "inmate"], name="link_once_per_pair")
        ]

    def __str__(self):
        return f"{self.depositor} → {self.inmate} ({self.get_status_display()})"

    @property
    def is_approved(self) -> bool:
        return self.status == self.Status.APPROVED


class DepositorBlock(models.Model):
    """Staff stopped a depositor at a facility: no new links, no deposits there. Kept in
    ``accounts`` beside ``DepositorLink``, for the same reason."""

    depositor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="depositor_blocks",
        verbose_name=_("depositor"),
    )
    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.CASCADE,
        related_name="depositor_blocks",
        verbose_name=_("facility"),
    )
    reason = models.TextField(verbose_name=_("reason"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("depositor block")
        verbose_name_plural = _("depositor blocks")
        constraints = [
            models.UniqueConstraint(fields=["depositor", "facility"], name="block_once_per_pair")
        ]

    def __str__(self):
        return f"{self.depositor} blocked at {self.facility}"


class AuditEntry(LogEntry):
    """The audit trail's entries (django-auditlog's ``LogEntry`` table), append-only in the
    database as the journal is: an UPDATE or DELETE is refused by a trigger (pgtrigger on
    PostgreSQL; on SQLite, migration ``0004_audit_trail_append_only`` writes the same rule).

    One UPDATE is let through: the one Django makes when a person with entries is deleted (a
    depositor closing their account), which only sets ``actor`` to NULL (``SET_NULL``); every
    other column must stay as it was. The entry keeps ``actor_email``, so it still says who.

    A proxy, so the trigger is declared here, in a migration of this app, not in the library's.
    """

    class Meta:
        proxy = True
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        triggers = [
            pgtrigger.Protect(name="audit_entry_never_deleted", operation=pgtrigger.Delete),
            pgtrigger.Protect(
                name="audit_entry_never_changed",
                operation=pgtrigger.Update,
                condition=pgtrigger.Condition(
                    "NEW.actor_id IS NOT NULL OR "
                    "(to_jsonb(OLD.*) - 'actor_id') IS DISTINCT FROM (to_jsonb(NEW.*) - 'actor_id')"
                ),
            ),
        ]
