"""Inmate sessions at a kiosk and the PIN failure counter that locks an inmate out.

A session is bound to the kiosk that opened it and lives while it is used: it expires after
``KIOSK_SESSION_IDLE_SECONDS`` without a request, and dies on sign-out. Its token is shown once
and stored only hashed. The PIN counter is a row of its own per inmate, written with one upsert,
so wrong PINs from many kiosks at once count exactly and never lock the inmate row.
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class KioskSession(models.Model):
    token_hash = models.CharField(
        max_length=64, unique=True, editable=False, verbose_name=_("token hash")
    )
    device = models.ForeignKey(
        "facilities.KioskDevice",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("device"),
    )
    inmate = models.ForeignKey(
        "facilities.Inmate", on_delete=models.CASCADE, related_name="+", verbose_name=_("inmate")
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))
    last_seen_at = models.DateTimeField(verbose_name=_("last seen at"))
    ended_at = models.DateTimeField(null=True, blank=True, verbose_name=_("ended at"))

    class Meta:
        verbose_name_plural = _("kiosk sessions")
        verbose_name = _("kiosk session")
        indexes = [models.Index(fields=["inmate", "ended_at"], name="kiosk_session_inmate_open")]

    def __str__(self):
        return f"{self.inmate} @ {self.device}"


class PinFailureCounter(models.Model):
    inmate = models.OneToOneField(
        "facilities.Inmate",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="+",
        verbose_name=_("inmate"),
    )
    failures = models.PositiveIntegerField(default=0, verbose_name=_("failures"))
    locked_until = models.DateTimeField(null=True, blank=True, verbose_name=_("locked until"))
    updated_at = models.DateTimeField(verbose_name=_("updated at"))

    class Meta:
        verbose_name_plural = _("PIN failure counters")
        verbose_name = _("PIN failure counter")
        constraints = [
            models.CheckConstraint(
                condition=Q(failures__gte=0), name="pin_failure_counter_non_negative"
            )
        ]

    def __str__(self):
        return f"{self.inmate_id}: {self.failures}"
