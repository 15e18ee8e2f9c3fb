"""Facilities and their money policy, housing units, inmates and kiosk devices.

The policy (caps, timezone, currency, deposit fee) is read by the ledger services; the caps
themselves are enforced on the ledger's own rows (see ``ledger.models``).

About 560 lines, most of them fields with their translated labels and the policy's CHECKs;
the models refer to each other.
"""

import datetime as dt
import hashlib
import unicodedata
from zoneinfo import ZoneInfo, available_timezones

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from commissary.money import format_fen

DEFAULT_MONTHLY_CAP_FEN = 100_000  # 1,000.00 yuan a calendar month
DEFAULT_BALANCE_CAP_FEN = 500_000  # 5,000.00 yuan at any moment
MAX_APPROVAL_WINDOW_HOURS = 24 * 7

# The money policy that changes only through a ``policy_change`` money request approved by a
# second facility administrator (or a superuser): the approval threshold and its window, the
# deposit fee rule, and the deposit limits. The facility form files a request for them; it
# never saves them directly (``facilities.services.save_facility_settings``).
POLICY_CHANGE_FIELDS = (
    "adjustment_approval_threshold_fen",
    "approval_window_hours",
    "deposit_fee_fixed_fen",
    "deposit_fee_rate_bp",
    "max_deposit_fen",
    "max_deposits_per_month",
)


def deposit_fee_fen(amount_fen: int, *, fixed_fen: int, rate_bp: int) -> int:
    """The depositor's fee on top of ``amount_fen``: a fixed part plus basis points of the
    amount, rounded up. It never counts against the inmate's caps."""
    return fixed_fen + -(-amount_fen * rate_bp // 10_000)  # ceiling division


def local_date(instant: dt.datetime, timezone_name: str) -> dt.date:
    """The calendar date ``instant`` falls on in that timezone: a facility's "today" is
    ``local_date(now, facility.timezone)``, never ``now.date()`` (the UTC date, a day behind
    in Beijing from 00:00 to 08:00)."""
    return instant.astimezone(ZoneInfo(timezone_name)).date()


def local_month(instant: dt.datetime, timezone_name: str) -> dt.date:
    """First day of the calendar month ``instant`` falls in, in that timezone."""
    return local_date(instant, timezone_name).replace(day=1)


def canonical_inmate_number(text: str) -> str:
    """An inmate number as stored and matched: full-width characters folded (NFKC), every
    space removed, upper case. "ｄ000 0005" typed by a family is "D0000005"."""
    return "".join(unicodedata.normalize("NFKC", text).split()).upper()


def validate_timezone(name: str) -> None:
    if name not in available_timezones():
        raise ValidationError(f"{name!r} is not a known IANA timezone.")


class Facility(models.Model):
    code = models.SlugField(max_length=32, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=200, verbose_name=_("name"))
    timezone = models.CharField(
        max_length=64,
        default="Asia/Shanghai",
        validators=[validate_timezone],
        verbose_name=_("timezone"),
    )
    currency = models.CharField(max_length=3, default="CNY", verbose_name=_("currency"))
    monthly_cap_fen = models.BigIntegerField(
        default=DEFAULT_MONTHLY_CAP_FEN,
        help_text=_("Family deposits an inmate may receive in one calendar month, in fen."),
        verbose_name=_("monthly cap fen"),
    )
    balance_cap_fen = models.BigIntegerField(
        default=DEFAULT_BALANCE_CAP_FEN,
        help_text=_("Money an inmate may hold at any moment (spendable + held + pending), in fen."),
        verbose_name=_("balance cap fen"),
    )
    deposit_fee_fixed_fen = models.BigIntegerField(
        default=0,
        help_text=_("Fixed fee per deposit, paid by the depositor on top, in fen."),
        verbose_name=_("deposit fee fixed fen"),
    )
    deposit_fee_rate_bp = models.PositiveIntegerField(
        default=0,
        help_text=_("Fee as basis points of the amount (100 = 1%), rounded up."),
        verbose_name=_("deposit fee rate bp"),
    )
    adjustment_approval_threshold_fen = models.BigIntegerField(
        default=50_000,
        help_text=_(
            "Staff debits above this, alone or summed over the approval window, need a "
            "second staff member's approval. At most the balance cap."
        ),
        verbose_name=_("adjustment approval threshold fen"),
    )
    approval_window_hours = models.PositiveSmallIntegerField(
        default=24,
        help_text=_(
            "One staff member's debits of one inmate made without a second approver are "
            "summed over the facility's calendar day and this many hours back, whichever reaches "
            "further; the sum is held to the approval threshold."
        ),
        verbose_name=_("approval window hours"),
    )
    max_deposit_fen = models.BigIntegerField(
        null=True,
        blank=True,
        help_text=_("The most one family deposit may be, in fen (empty: no limit of its own)."),
        verbose_name=_("max deposit fen"),
    )
    max_deposits_per_month = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_(
            "How many family deposits an inmate may receive in a calendar month (empty: no limit)."
        ),
        verbose_name=_("max deposits per month"),
    )
    links_need_approval = models.BooleanField(
        default=True,
        help_text=_("Depositor-inmate links wait for staff approval."),
        verbose_name=_("links need approval"),
    )
    trust_alert_emails = models.TextField(
        blank=True,
        help_text=_("Who is emailed when reconciliation finds something wrong (comma-separated)."),
        verbose_name=_("trust alert emails"),
    )
    # The fair commissary: prices and disputes (catalog). A markup cap in basis points over
    # cost (3500 = a price at most 35% over cost; empty: no cap); price rises take effect on a
    # local date at least this many days ahead (cuts at once); the public price list; how long
    # after delivery an inmate may dispute an order line, and how long staff have to answer.
    markup_cap_bp = models.PositiveIntegerField(
        _("markup cap (basis points over cost)"),
        null=True,
        blank=True,
        help_text=_("3500 = a price at most 35 percent over its cost; empty: no cap."),
    )
    price_rise_notice_days = models.PositiveSmallIntegerField(
        _("notice of a price rise (days)"),
        default=7,
        help_text=_("A price rise takes effect this many days after it is filed at the earliest."),
    )
    publishes_prices = models.BooleanField(
        _("public price list"),
        default=True,
        help_text=_("Anyone may see this facility's prices and their history, signed out."),
    )
    dispute_window_days = models.PositiveSmallIntegerField(
        _("days to dispute an order"),
        default=14,
        help_text=_("An inmate may dispute an order line this many days after delivery."),
    )
    dispute_answer_days = models.PositiveSmallIntegerField(
        _("days to answer a dispute"),
        default=14,
        help_text=_("Staff answer a dispute within this many days, else it is escalated."),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("facility")
        verbose_name_plural = _("facilities")
        constraints = [
            models.CheckConstraint(
                condition=Q(monthly_cap_fen__gt=0), name="facility_monthly_cap_positive"
            ),
            models.CheckConstraint(
                condition=Q(balance_cap_fen__gt=0), name="facility_balance_cap_positive"
            ),
            models.CheckConstraint(
                condition=Q(deposit_fee_fixed_fen__gte=0), name="facility_fee_fixed_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(deposit_fee_rate_bp__lte=10_000),
                name="facility_fee_rate_at_most_100pct",
            ),
            models.CheckConstraint(
                condition=Q(max_deposit_fen__isnull=True) | Q(max_deposit_fen__gt=0),
                name="facility_max_deposit_positive",
            ),
            models.CheckConstraint(
                condition=Q(max_deposits_per_month__isnull=True) | Q(max_deposits_per_month__gt=0),
                name="facility_max_deposits_per_month_positive",
            ),
            models.CheckConstraint(
                condition=Q(adjustment_approval_threshold_fen__gte=0),
                name="facility_approval_threshold_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(price_rise_notice_days__lte=365)
                & Q(dispute_window_days__gte=1, dispute_window_days__lte=365)
                & Q(dispute_answer_days__gte=1, dispute_answer_days__lte=365),
                name="facility_commissary_days_in_range",
            ),
            # Above the balance cap no single debit could ever need a second person.
            models.CheckConstraint(
                condition=Q(adjustment_approval_threshold_fen__lte=F("balance_cap_fen")),
                name="facility_approval_threshold_within_balance_cap",
            ),
            models.CheckConstraint(
                condition=Q(approval_window_hours__lte=MAX_APPROVAL_WINDOW_HOURS),
                name="facility_approval_window_at_most_a_week",
            ),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        policy_errors = policy_bound_errors(
            {field: getattr(self, field) for field in POLICY_CHANGE_FIELDS},
            balance_cap_fen=self.balance_cap_fen,
        )
        if policy_errors:
            raise ValidationError(policy_errors)

    def deposit_fee_fen(self, amount_fen: int) -> int:
        return deposit_fee_fen(
            amount_fen, fixed_fen=self.deposit_fee_fixed_fen, rate_bp=self.deposit_fee_rate_bp
        )

    @property
    def trust_alert_recipients(self) -> list[str]:
        return [
            address.strip() for address in self.trust_alert_emails.split(",") if address.strip()
        ]

    def local_date(self, instant: dt.datetime) -> dt.date:
        """The facility's calendar date at ``instant`` (its own timezone)."""
        return local_date(instant, self.timezone)

    def local_month(self, instant: dt.datetime) -> dt.date:
        return local_month(instant, self.timezone)


def max_deposit_fee_rate_bp() -> int:
    """The highest deposit fee rate any facility may set, in basis points: the operator's
    ``DEPOSIT_FEE_MAX_RATE_BP`` setting (10% by default), never above 100%."""
    return min(10_000, int(getattr(settings, "DEPOSIT_FEE_MAX_RATE_BP", 1_000)))


def max_deposit_fee_fixed_fen() -> int:
    """The highest fixed deposit fee any facility may set: ``DEPOSIT_FEE_MAX_FIXED_FEN``."""
    return int(getattr(settings, "DEPOSIT_FEE_MAX_FIXED_FEN", 5_000))


def policy_bound_errors(values: dict, *, balance_cap_fen: int) -> dict[str, str]:
    """The bounds a facility's money policy stays within, by field: {field: why not}. Used by
    ``Facility.clean`` and by the policy change service when a change is asked for and again
    when it is approved (the database backs what it can with CHECK constraints)."""
    found = {}
    rate_bp = values.get("deposit_fee_rate_bp")
    if rate_bp is not None and not 0 <= rate_bp <= max_deposit_fee_rate_bp():
        found["deposit_fee_rate_bp"] = _(
            "The deposit fee rate may be at most %(rate)s basis points."
        ) % {"rate": max_deposit_fee_rate_bp()}
    fixed_fen = values.get("deposit_fee_fixed_fen")
    if fixed_fen is not None and not 0 <= fixed_fen <= max_deposit_fee_fixed_fen():
        found["deposit_fee_fixed_fen"] = _("The fixed deposit fee may be at most %(amount)s.") % {
            "amount": format_fen(max_deposit_fee_fixed_fen())
        }
    threshold_fen = values.get("adjustment_approval_threshold_fen")
    if threshold_fen is not None and not 0 <= threshold_fen <= balance_cap_fen:
        found["adjustment_approval_threshold_fen"] = _(
            "The approval threshold may be at most the balance cap (%(amount)s)."
        ) % {"amount": format_fen(balance_cap_fen)}
    window_hours = values.get("approval_window_hours")
    if window_hours is not None and not 0 <= window_hours <= MAX_APPROVAL_WINDOW_HOURS:
        found["approval_window_hours"] = _("The approval window is at most %(hours)d hours.") % {
            "hours": MAX_APPROVAL_WINDOW_HOURS
        }
    max_deposit_fen = values.get("max_deposit_fen")
    if max_deposit_fen is not None and max_deposit_fen <= 0:
        found["max_deposit_fen"] = _("The largest single deposit must be more than zero.")
    max_count = values.get("max_deposits_per_month")
    if max_count is not None and max_count <= 0:
        found["max_deposits_per_month"] = _("The monthly count must be at least one.")
    return found


def policy_value_display(field: str, value, currency: str = "CNY") -> str:
    """A policy value as staff read it: yuan for amounts, percent for the fee rate."""
    if value is None:
        return str(_("No limit"))
    if field.endswith("_fen"):
        return format_fen(value, currency)
    if field == "deposit_fee_rate_bp":
        return f"{value / 100:.2f}%"
    return str(value)


class HousingUnit(models.Model):
    facility = models.ForeignKey(
        Facility, on_delete=models.PROTECT, related_name="housing_units", verbose_name=_("facility")
    )
    name = models.CharField(max_length=100, verbose_name=_("name"))

    class Meta:
        verbose_name = _("housing unit")
        verbose_name_plural = _("housing units")
        constraints = [
            models.UniqueConstraint(fields=["facility", "name"], name="housing_unit_unique_name")
        ]

    def __str__(self):
        return f"{self.facility.code} / {self.name}"


class Grade(models.Model):
    """A management grade and the spending limit that goes with it, as facility policy
    (Chinese prisons set commissary spending by grade, e.g. 400 / 500 / 600 / 800 yuan a
    month). The limit runs per calendar week (from Monday 00:00) or per calendar month, both
    in the facility's timezone; no limit means the inmate spends up to the balance.

    A festival limit, when set, replaces the usual one for orders whose instant falls, in the
    facility's timezone, in one of the facility's festival months (``FestivalMonth``); it is at
    least the usual limit and needs one. For a weekly grade the order's own local date decides,
    so in a week that runs into a festival month the festival limit holds on its festival days
    (against the whole week's spending). ``facilities.selectors.spending_limit_for`` applies
    the rule."""

    class Period(models.TextChoices):
        WEEK = "week", _("Week")
        MONTH = "month", _("Month")

    facility = models.ForeignKey(
        Facility, on_delete=models.PROTECT, related_name="grades", verbose_name=_("facility")
    )
    name = models.CharField(_("name"), max_length=50)
    spending_limit_fen = models.BigIntegerField(
        _("spending limit (fen)"),
        null=True,
        blank=True,
        help_text=_("Commissary spending allowed per period, in fen; empty for no limit."),
    )
    spending_period = models.CharField(
        _("spending period"), max_length=8, choices=Period.choices, default=Period.MONTH
    )
    festival_spending_limit_fen = models.BigIntegerField(
        _("festival-month spending limit (fen)"),
        null=True,
        blank=True,
        help_text=_(
            "Spending allowed per period when the order falls in one of the facility's "
            "festival months, in fen; at least the usual limit. Empty: the usual limit applies."
        ),
    )

    class Meta:
        verbose_name_plural = _("grades")
        verbose_name = _("grade")
        constraints = [
            models.UniqueConstraint(fields=["facility", "name"], name="grade_unique_name"),
            models.CheckConstraint(
                condition=Q(spending_limit_fen__isnull=True) | Q(spending_limit_fen__gte=0),
                name="grade_spending_limit_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(spending_period__in=["week", "month"]),
                name="grade_spending_period_known",
            ),
            models.CheckConstraint(
                condition=Q(festival_spending_limit_fen__isnull=True)
                | Q(festival_spending_limit_fen__gte=0),
                name="grade_festival_limit_non_negative",
            ),
            # A festival month raises a limit; with no usual limit there is nothing to raise.
            models.CheckConstraint(
                condition=Q(festival_spending_limit_fen__isnull=True)
                | Q(spending_limit_fen__isnull=False),
                name="grade_festival_limit_needs_usual_limit",
            ),
            models.CheckConstraint(
                condition=Q(festival_spending_limit_fen__isnull=True)
                | Q(festival_spending_limit_fen__gte=F("spending_limit_fen")),
                name="grade_festival_limit_at_least_usual",
            ),
        ]

    def __str__(self):
        return f"{self.facility.code} / {self.name}"

    def clean(self):
        super().clean()
        festival_fen, usual_fen = self.festival_spending_limit_fen, self.spending_limit_fen
        if festival_fen is None:
            return
        if usual_fen is None:
            raise ValidationError(
                {
                    "festival_spending_limit_fen": _(
                        "A festival-month limit needs a usual spending limit; without one the "
                        "grade has no limit at any time."
                    )
                }
            )
        if festival_fen < usual_fen:
            raise ValidationError(
                {
                    "festival_spending_limit_fen": _(
                        "The festival-month limit is at least the usual limit (%(amount)s)."
                    )
                    % {"amount": format_fen(usual_fen)}
                }
            )

    def period_start(self, instant: dt.datetime) -> dt.datetime:
        """The instant this grade's spending period began (facility time), for ``instant``."""
        return spending_period_start(instant, self.facility.timezone, self.spending_period)


def spending_period_start(instant: dt.datetime, timezone_name: str, period: str) -> dt.datetime:
    """Monday 00:00 of the week, or the 1st 00:00 of the month, in that timezone."""
    zone = ZoneInfo(timezone_name)
    local_day = local_date(instant, timezone_name)
    if period == Grade.Period.WEEK:
        first_day = local_day - dt.timedelta(days=local_day.weekday())
    else:
        first_day = local_day.replace(day=1)
    return dt.datetime.combine(first_day, dt.time.min, tzinfo=zone)


class FestivalMonth(models.Model):
    """A calendar month the facility declares a festival month (春节, 中秋, 国庆 ...): orders
    whose instant falls in it, in the facility's timezone, are held to the grades' festival
    limits instead of their usual ones (``facilities.selectors.spending_limit_for``)."""

    facility = models.ForeignKey(
        Facility,
        on_delete=models.PROTECT,
        related_name="festival_months",
        verbose_name=_("facility"),
    )
    month = models.DateField(
        _("month"), help_text=_("Stored as the first day of the month, in facility time.")
    )
    name = models.CharField(
        _("name"), max_length=100, help_text=_("For example 春节 (Spring Festival).")
    )

    class Meta:
        verbose_name_plural = _("festival months")
        verbose_name = _("festival month")
        constraints = [
            models.UniqueConstraint(
                fields=["facility", "month"], name="festival_month_unique_per_facility"
            ),
            models.CheckConstraint(
                condition=Q(month__day=1), name="festival_month_is_first_of_month"
            ),
        ]

    def __str__(self):
        return f"{self.month:%Y-%m} {self.name}"


class Inmate(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        RELEASED = "released", _("Released")

    facility = models.ForeignKey(
        Facility, on_delete=models.PROTECT, related_name="inmates", verbose_name=_("facility")
    )
    housing_unit = models.ForeignKey(
        HousingUnit,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="inmates",
        verbose_name=_("housing unit"),
    )
    inmate_number = models.CharField(max_length=32, verbose_name=_("inmate number"))
    surname = models.CharField(max_length=100, verbose_name=_("surname"))
    given_name = models.CharField(max_length=100, blank=True, verbose_name=_("given name"))
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.ACTIVE, verbose_name=_("status")
    )
    pin_hash = models.CharField(max_length=200, blank=True, verbose_name=_("pin hash"))
    card_token = models.CharField(
        max_length=64,
        unique=True,
        null=True,
        blank=True,
        help_text=_("Printed as a QR code on the ID card; signs in with the PIN at a kiosk."),
        verbose_name=_("card token"),
    )
    admitted_at = models.DateTimeField(verbose_name=_("admitted at"))
    released_at = models.DateTimeField(null=True, blank=True, verbose_name=_("released at"))
    grade = models.ForeignKey(
        Grade,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="inmates",
        verbose_name=_("grade"),
        help_text=_("Management grade: sets the commissary spending limit."),
    )

    class Meta:
        verbose_name = _("inmate")
        verbose_name_plural = _("inmates")
        constraints = [
            models.UniqueConstraint(
                fields=["facility", "inmate_number"], name="inmate_number_unique_per_facility"
            ),
            models.CheckConstraint(
                condition=Q(status="active", released_at__isnull=True)
                | Q(status="released", released_at__isnull=False),
                name="inmate_released_at_matches_status",
            ),
        ]

    def __str__(self):
        return f"{self.inmate_number} {self.surname}{self.given_name}"

    @property
    def is_released(self) -> bool:
        return self.status == self.Status.RELEASED

    def check_pin(self, pin: str) -> bool:
        return bool(self.pin_hash) and check_password(pin, self.pin_hash)


def hash_device_key(raw_key: str) -> str:
    """Device keys are 256 random bits, so one SHA-256 is enough (no stretching needed)."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


class KioskDevice(models.Model):
    """A commissary kiosk. Its key is shown once when issued and stored only hashed."""

    facility = models.ForeignKey(
        Facility, on_delete=models.PROTECT, related_name="kiosks", verbose_name=_("facility")
    )
    name = models.CharField(max_length=100, verbose_name=_("name"))
    key_prefix = models.CharField(
        max_length=12, db_index=True, editable=False, verbose_name=_("key prefix")
    )
    key_hash = models.CharField(
        max_length=64, unique=True, editable=False, verbose_name=_("key hash")
    )
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("revoked at"))

    class Meta:
        verbose_name = _("kiosk device")
        verbose_name_plural = _("kiosk devices")

    def __str__(self):
        return f"{self.name} ({self.facility.code})"
