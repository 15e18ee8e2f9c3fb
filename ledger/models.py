"""The money: accounts, the double-entry journal, monthly periods and deposit reservations.

Guards, in the database wherever a database can:
1. every transaction balances (deferred constraint trigger: entries sum to zero);
2. inmate balances are never negative (CHECK); system-account balances are derived, not cached;
3. spendable + pending never exceeds the balance cap carried on the spendable row (CHECK);
4. a period's received + reserved never exceeds its monthly cap (CHECK), the month being part
   of the period's key;
5. the journal is append-only (triggers refuse UPDATE and DELETE of transactions and entries).
Money rows are written by ``ledger.services``, the batch jobs (``ledger.batch``: rollover,
expiry) and the bulk loader the demo uses (``ledger.bulk``); these constraints and triggers
hold every one of them to the invariants.

One module of about 890 lines: the money's tables refer to each other (journal, archived
months, periods, deposits, events, requests, batch chunks) and their constraints and triggers
are the invariants, which read best side by side; most of its length is those constraints and
each field's translated label.
"""

import uuid

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from commissary.money import format_fen


class IdempotentRecord(models.Model):
    """What every row written under an idempotency key carries (invariant 6): who chose the
    key (the scope: system, kiosk:<id>, depositor:<id>, staff:<id>), the key, and the
    fingerprint of the first request (``services.request_hash_of``), which a replay must
    match. Each table adds ``unique_key(name)`` to its constraints under its own name (the
    names predate this class; renaming them would rebuild the unique indexes)."""

    idempotency_scope = models.CharField(
        max_length=40,
        help_text=_("Who chose the key: system, kiosk:<id>, depositor:<id>, staff:<id>."),
        verbose_name=_("idempotency scope"),
    )
    idempotency_key = models.CharField(max_length=200, verbose_name=_("idempotency key"))
    request_hash = models.CharField(max_length=64, verbose_name=_("request hash"))

    class Meta:
        abstract = True

    @staticmethod
    def unique_key(name: str) -> models.UniqueConstraint:
        """One row per scope and key: the second writer's insert fails, and it returns the
        first one's answer."""
        return models.UniqueConstraint(fields=["idempotency_scope", "idempotency_key"], name=name)

    @classmethod
    def lookup(cls, scope: str, idempotency_key: str):
        """For ``run_idempotent``: the (id, request hash) stored under a key, or None."""
        return lambda: (
            cls.objects.filter(idempotency_scope=scope, idempotency_key=idempotency_key)
            .values_list("id", "request_hash")
            .first()
        )


class Account(models.Model):
    class Kind(models.TextChoices):
        SPENDABLE = "spendable", _("Inmate spendable")
        HELD = "held", _("Inmate held")
        CLEARING = "clearing", _("Deposits clearing")
        SALES = "sales", _("Commissary sales")
        FEES = "fees", _("Fees")
        PAYOUTS = "payouts", _("Payouts")
        ADJUSTMENTS = "adjustments", _("Adjustments")

    INMATE_KINDS = (Kind.SPENDABLE, Kind.HELD)

    kind = models.CharField(max_length=16, choices=Kind.choices, verbose_name=_("kind"))
    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        related_name="ledger_accounts",
        verbose_name=_("facility"),
    )
    inmate = models.ForeignKey(
        "facilities.Inmate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_accounts",
        verbose_name=_("inmate"),
    )
    provider = models.CharField(
        max_length=32,
        blank=True,
        default="",
        help_text=_("Payment provider, for clearing accounts."),
        verbose_name=_("provider"),
    )
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    # Cached for inmate accounts only, changed in the same DB transaction as the entries.
    # System accounts are touched by every operation, so their balance is derived from
    # the entries (NULL here) and no hot path ever locks them.
    balance_fen = models.BigIntegerField(null=True, blank=True, verbose_name=_("balance fen"))
    pending_fen = models.BigIntegerField(
        default=0,
        help_text=_("Deposits reserved for this inmate and not yet credited."),
        verbose_name=_("pending fen"),
    )
    balance_cap_fen = models.BigIntegerField(
        null=True,
        blank=True,
        help_text=_("The facility's balance cap, carried for the CHECK."),
        verbose_name=_("balance cap fen"),
    )
    is_frozen = models.BooleanField(default=False, verbose_name=_("is frozen"))
    is_closed = models.BooleanField(default=False, verbose_name=_("is closed"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        constraints = [
            models.UniqueConstraint(
                fields=["inmate", "kind"],
                condition=Q(inmate__isnull=False),
                name="account_one_per_inmate_and_kind",
            ),
            models.UniqueConstraint(
                fields=["facility", "kind", "provider"],
                condition=Q(inmate__isnull=True),
                name="account_one_system_account_per_kind",
            ),
            models.CheckConstraint(
                condition=Q(
                    inmate__isnull=False, kind__in=["spendable", "held"], balance_fen__isnull=False
                )
                | Q(inmate__isnull=True, balance_fen__isnull=True)
                & ~Q(kind__in=["spendable", "held"]),
                name="account_inmate_kinds_cache_balance",
            ),
            models.CheckConstraint(
                condition=Q(balance_fen__gte=0) | Q(balance_fen__isnull=True),
                name="account_inmate_balance_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(pending_fen__gte=0), name="account_pending_non_negative"
            ),
            models.CheckConstraint(
                condition=~Q(kind="spendable")
                | Q(
                    balance_cap_fen__isnull=False,
                    balance_fen__lte=F("balance_cap_fen") - F("pending_fen"),
                ),
                name="account_spendable_plus_pending_within_cap",
            ),
            models.CheckConstraint(
                condition=Q(kind="spendable") | Q(pending_fen=0),
                name="account_pending_only_on_spendable",
            ),
        ]

    def __str__(self):
        owner = self.inmate.inmate_number if self.inmate_id else self.facility.code
        suffix = f":{self.provider}" if self.provider else ""
        return f"{owner} {self.get_kind_display()}{suffix}"


class Transaction(IdempotentRecord):
    class Kind(models.TextChoices):
        DEPOSIT = "deposit", _("Deposit credited")
        PURCHASE = "purchase", _("Purchase")
        REFUND = "refund", _("Purchase refund")
        ADJUSTMENT = "adjustment", _("Staff adjustment")
        HOLD = "hold", _("Hold")
        HOLD_RELEASE = "hold_release", _("Hold released")
        TRANSFER_EXCESS = "transfer_excess", _("Excess over a new facility's cap moved to held")
        PAYOUT = "payout", _("Release payout")
        REVERSAL = "reversal", _("Reversal")

    kind = models.CharField(max_length=16, choices=Kind.choices, verbose_name=_("kind"))
    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("facility"),
    )
    inmate = models.ForeignKey(
        "facilities.Inmate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="transactions",
        verbose_name=_("inmate"),
        db_index=False,  # transaction_inmate_newest leads with it
    )
    deposit = models.OneToOneField(
        "Deposit",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="transaction",
        verbose_name=_("deposit"),
    )
    refund_of = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refunds",
        verbose_name=_("refund of"),
        db_index=False,  # a partial index: see Meta
    )
    reverses = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversed_by",
        verbose_name=_("reverses"),
    )
    memo = models.TextField(blank=True, verbose_name=_("memo"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
        db_index=False,  # a partial index: see Meta
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("approved by"),
        db_index=False,  # a partial index: see Meta
    )
    created_at = models.DateTimeField(db_index=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("transaction")
        verbose_name_plural = _("transactions")
        # Every posting writes a row here, so every index is paid on every deposit and
        # purchase. Refunds, staff-made and approved transactions are few: their columns are
        # NULL on nearly every row, and a partial index holds only the rows that name one (a
        # lookup by a value, the foreign-key checks included, still uses it). The inmate's own
        # lookups use transaction_inmate_newest, which leads with the inmate.
        indexes = [
            models.Index(fields=["inmate", "-created_at"], name="transaction_inmate_newest"),
            *(
                models.Index(
                    fields=[field],
                    name=f"transaction_{field}",
                    condition=models.Q(**{f"{field}__isnull": False}),
                )
                for field in ("refund_of", "created_by", "approved_by")
            ),
        ]
        constraints = [IdempotentRecord.unique_key("transaction_one_per_scope_and_key")]
        permissions = [
            ("approve_money", "Can approve another staff member's money request"),
        ]
        triggers = [
            pgtrigger.Protect(
                name="transaction_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
            pgtrigger.Trigger(
                name="transaction_has_entries",
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                timing=pgtrigger.Deferred,
                func=(
                    "IF NOT EXISTS (SELECT 1 FROM ledger_entry WHERE transaction_id = NEW.id "
                    "AND created_at = NEW.created_at) THEN "
                    "RAISE EXCEPTION 'transaction % has no entries', NEW.id "
                    "USING ERRCODE = 'integrity_constraint_violation'; END IF; RETURN NULL;"
                ),
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.get_kind_display()}"


class Entry(models.Model):
    transaction = models.ForeignKey(
        Transaction, on_delete=models.PROTECT, related_name="entries", verbose_name=_("transaction")
    )
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="entries", verbose_name=_("account")
    )
    amount_fen = models.BigIntegerField(
        help_text=_("Signed: positive adds to the account."), verbose_name=_("amount fen")
    )
    # The transaction's instant, copied when it is posted (a deferred trigger refuses any
    # other): on PostgreSQL the journal is partitioned by month on it (``ledger.partitions``),
    # so a month's statement or report reads that month's partition only.
    created_at = models.DateTimeField(
        help_text=_("The transaction's instant: the partition key."), verbose_name=_("posted at")
    )

    class Meta:
        verbose_name = _("entry")
        verbose_name_plural = _("entries")
        constraints = [
            models.CheckConstraint(condition=~Q(amount_fen=0), name="entry_amount_non_zero"),
        ]
        triggers = [
            pgtrigger.Protect(
                name="entry_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
            pgtrigger.Trigger(
                name="entry_transaction_balances",
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                timing=pgtrigger.Deferred,
                # An entry carries its transaction's instant (the partition key), so the
                # transaction's legs are all in one partition and the sum reads only that one.
                func=(
                    "IF NEW.created_at IS DISTINCT FROM (SELECT created_at FROM "
                    "ledger_transaction WHERE id = NEW.transaction_id) THEN "
                    "RAISE EXCEPTION 'entry % is not dated as its transaction %', NEW.id, "
                    "NEW.transaction_id USING ERRCODE = 'integrity_constraint_violation'; END IF; "
                    "IF (SELECT SUM(amount_fen) FROM ledger_entry "
                    "WHERE transaction_id = NEW.transaction_id "
                    "AND created_at = NEW.created_at) <> 0 THEN "
                    "RAISE EXCEPTION 'transaction % does not balance', NEW.transaction_id "
                    "USING ERRCODE = 'integrity_constraint_violation'; END IF; RETURN NULL;"
                ),
            ),
        ]

    def __str__(self):
        sign = "+" if self.amount_fen > 0 else ""
        return f"{self.account} {sign}{format_fen(self.amount_fen)}"


class ArchivedJournalMonth(models.Model):
    """A month of entries detached from the journal for archive (``ledger.archive``): its
    partition left as a table of its own, to be dumped and dropped. Its per-account totals
    (``ArchivedAccountTotal``) stand in for its entries wherever a balance sums the journal."""

    month = models.DateField(unique=True, verbose_name=_("month"))
    starts_at = models.DateTimeField(verbose_name=_("starts at"))
    ends_at = models.DateTimeField(verbose_name=_("ends at"))
    table_name = models.CharField(max_length=63, verbose_name=_("table name"))
    entry_count = models.BigIntegerField(verbose_name=_("entry count"))
    reconciliation_run = models.ForeignKey(
        "ScheduledRun",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("reconciliation run"),
        help_text=_("The clean reconciliation run, started after the month ended, it relied on."),
    )
    detached_at = models.DateTimeField(verbose_name=_("detached at"))
    detached_by = models.CharField(
        max_length=150,
        blank=True,
        default="",
        verbose_name=_("detached by"),
        help_text=_(
            "Who ran the detach: the name given to the command with --by, else the system "
            "user it ran as (empty for months detached before this was recorded)."
        ),
    )
    has_day_totals = models.BooleanField(
        default=False,
        verbose_name=_("has day totals"),
        help_text=_(
            "Whether its day totals were kept (see Archived day totals): months detached "
            "before they were kept answer no report of their days."
        ),
    )

    class Meta:
        verbose_name = _("archived journal month")
        verbose_name_plural = _("archived journal months")
        triggers = [
            pgtrigger.Protect(
                name="archived_month_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]

    def __str__(self):
        return f"{self.month:%Y-%m} ({self.table_name})"


class ArchivedAccountTotal(models.Model):
    """The sum of one account's entries in an archived month: added back to the journal's sums
    (balances, statement openings, reconciliation) so they are the same after the detach."""

    archived_month = models.ForeignKey(
        ArchivedJournalMonth,
        on_delete=models.PROTECT,
        related_name="account_totals",
        verbose_name=_("archived month"),
    )
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="+", verbose_name=_("account")
    )
    amount_fen = models.BigIntegerField(verbose_name=_("amount fen"))

    class Meta:
        verbose_name = _("archived account total")
        verbose_name_plural = _("archived account totals")
        constraints = [
            models.UniqueConstraint(
                fields=["archived_month", "account"], name="archived_total_once_per_account"
            ),
        ]
        triggers = [
            pgtrigger.Protect(
                name="archived_total_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]

    def __str__(self):
        return f"{self.archived_month.month:%Y-%m} {self.account} {format_fen(self.amount_fen)}"


class ArchivedDayTotal(models.Model):
    """The sum of one account's entries on one facility-local day of an archived month, kept
    for the accounts whose days the reports read: the inmates' spendable and held money (trust
    balances at a day) and the facility's sales and fees (its daily figures). One row an
    account and a day with entries, never one an entry.

    ``starts_at`` and ``ends_at`` are the instants the total covers: the day in the timezone of
    the account's facility at the detach, cut at the month's bounds (the partitions' months are
    Shanghai's, so a facility in another timezone has a day at each end of the month that two
    months share). A reader in another timezone can tell from them which totals fit its days."""

    archived_month = models.ForeignKey(
        ArchivedJournalMonth,
        on_delete=models.PROTECT,
        related_name="day_totals",
        verbose_name=_("archived month"),
    )
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="+", verbose_name=_("account")
    )
    day = models.DateField(verbose_name=_("day"), help_text=_("The facility-local day."))
    starts_at = models.DateTimeField(verbose_name=_("starts at"))
    ends_at = models.DateTimeField(verbose_name=_("ends at"))
    amount_fen = models.BigIntegerField(verbose_name=_("amount fen"))

    class Meta:
        verbose_name = _("archived day total")
        verbose_name_plural = _("archived day totals")
        constraints = [
            models.UniqueConstraint(
                fields=["archived_month", "account", "day"], name="archived_day_total_once"
            ),
            models.CheckConstraint(
                condition=Q(starts_at__lt=F("ends_at")), name="archived_day_total_has_a_span"
            ),
        ]
        triggers = [
            pgtrigger.Protect(
                name="archived_day_total_append_only",
                operation=pgtrigger.Update | pgtrigger.Delete,
            ),
        ]

    def __str__(self):
        return f"{self.day:%Y-%m-%d} {self.account} {format_fen(self.amount_fen)}"


class MonthlyPeriod(models.Model):
    """Family deposits for one inmate in one facility-local calendar month.

    The month is part of the key, and a deposit finds or creates its own month's row, so a
    rollover that runs late, twice or never can neither let money past the cap nor block it.
    """

    inmate = models.ForeignKey(
        "facilities.Inmate",
        on_delete=models.PROTECT,
        related_name="periods",
        verbose_name=_("inmate"),
    )
    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("facility"),
    )
    month = models.DateField(
        help_text=_("First day of the facility-local calendar month."), verbose_name=_("month")
    )
    received_fen = models.BigIntegerField(default=0, verbose_name=_("received fen"))
    reserved_fen = models.BigIntegerField(default=0, verbose_name=_("reserved fen"))
    cap_fen = models.BigIntegerField(verbose_name=_("cap fen"))
    closed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("closed at"))

    class Meta:
        verbose_name = _("monthly period")
        verbose_name_plural = _("monthly periods")
        constraints = [
            models.UniqueConstraint(fields=["inmate", "month"], name="period_one_per_inmate_month"),
            models.CheckConstraint(
                condition=Q(received_fen__gte=0), name="period_received_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(reserved_fen__gte=0), name="period_reserved_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(received_fen__lte=F("cap_fen") - F("reserved_fen")),
                name="period_within_monthly_cap",
            ),
        ]

    def __str__(self):
        return f"{self.inmate.inmate_number} {self.month:%Y-%m}"

    @property
    def remaining_fen(self) -> int:
        return self.cap_fen - self.received_fen - self.reserved_fen


class Deposit(IdempotentRecord):
    """A family deposit: reserved under both caps when created, then credited, or released
    as failed/expired. A paid deposit that a monitoring rule stops is ``held``: its room stays
    reserved under both caps and nothing reaches the inmate until staff accept it (credited)
    or reject it (refunded through the provider)."""

    class Status(models.TextChoices):
        CREATED = "created", _("Awaiting payment")
        # Paid, stopped by a monitoring rule: still reserved under both caps, not credited.
        HELD = "held", _("Held for review")
        CREDITED = "credited", _("Credited")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")
        # Paid after it had expired or failed, when it no longer fitted under the caps: the
        # provider returned the payment and nothing was credited.
        REFUNDED = "refunded", _("Refunded")

    reference = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("reference")
    )
    inmate = models.ForeignKey(
        "facilities.Inmate",
        on_delete=models.PROTECT,
        related_name="deposits",
        verbose_name=_("inmate"),
        db_index=False,  # deposit_inmate_newest leads with it
    )
    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("facility"),
    )
    period = models.ForeignKey(
        MonthlyPeriod, on_delete=models.PROTECT, related_name="deposits", verbose_name=_("period")
    )
    depositor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deposits",
        verbose_name=_("depositor"),
        db_index=False,  # deposit_depositor_newest leads with it
    )
    amount_fen = models.BigIntegerField(verbose_name=_("amount fen"))
    fee_fen = models.BigIntegerField(default=0, verbose_name=_("fee fen"))
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    provider = models.CharField(max_length=32, verbose_name=_("provider"))
    provider_reference = models.CharField(
        max_length=200, blank=True, verbose_name=_("provider reference")
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.CREATED, verbose_name=_("status")
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))
    expires_at = models.DateTimeField(verbose_name=_("expires at"))
    resolved_at = models.DateTimeField(null=True, blank=True, verbose_name=_("resolved at"))

    class Meta:
        verbose_name = _("deposit")
        verbose_name_plural = _("deposits")
        indexes = [
            models.Index(fields=["status", "expires_at"], name="deposit_status_expiry"),
            models.Index(fields=["inmate", "-created_at"], name="deposit_inmate_newest"),
            # A depositor's deposits, newest first: the family's list and monitoring's window
            # rules (one depositor's deposits since a window's first local midnight).
            models.Index(fields=["depositor", "-created_at"], name="deposit_depositor_newest"),
        ]
        constraints = [
            IdempotentRecord.unique_key("deposit_one_per_scope_and_key"),
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="deposit_amount_positive"),
            models.CheckConstraint(condition=Q(fee_fen__gte=0), name="deposit_fee_non_negative"),
            models.CheckConstraint(
                condition=Q(status__in=["created", "held"], resolved_at__isnull=True)
                | (~Q(status__in=["created", "held"]) & Q(resolved_at__isnull=False)),
                name="deposit_resolved_at_matches_status",
            ),
        ]

    def __str__(self):
        return _("Deposit %(reference)s (%(status)s)") % {
            "reference": self.reference,
            "status": self.get_status_display(),
        }


class AccountEvent(IdempotentRecord):
    """What staff (or the system) did to an inmate's accounts that is not a journal
    transaction of its own: a freeze or unfreeze, a move to another facility, the closing on
    release. Who, why and when, append-only, idempotent per (scope, key) like a transaction;
    a move or closing that moved money points at its transaction."""

    class Kind(models.TextChoices):
        FROZEN = "frozen", _("Account frozen")
        UNFROZEN = "unfrozen", _("Account unfrozen")
        MOVED = "moved", _("Moved to another facility")
        CLOSED = "closed", _("Closed on release")

    kind = models.CharField(max_length=16, choices=Kind.choices, verbose_name=_("kind"))
    inmate = models.ForeignKey(
        "facilities.Inmate",
        on_delete=models.PROTECT,
        related_name="account_events",
        verbose_name=_("inmate"),
    )
    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("facility"),
    )
    from_facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("from facility"),
    )
    transaction = models.OneToOneField(
        Transaction,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="event",
        verbose_name=_("transaction"),
    )
    reason = models.TextField(blank=True, verbose_name=_("reason"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))

    class Meta:
        verbose_name = _("account event")
        verbose_name_plural = _("account events")
        indexes = [models.Index(fields=["inmate", "-created_at"], name="account_event_newest")]
        constraints = [IdempotentRecord.unique_key("account_event_one_per_scope_and_key")]
        triggers = [
            pgtrigger.Protect(
                name="account_event_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            )
        ]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.inmate_id})"


class ScheduledRun(models.Model):
    """One run of scheduled work (rollover, reconciliation, expiry, statements, the sweep of
    unsent receipts), with what it did, for the admin. A run killed half-way stays ``running``
    until the next run of the same work marks it ``abandoned``; the work itself is idempotent
    and simply runs again."""

    class Kind(models.TextChoices):
        ROLLOVER = "rollover", _("Monthly rollover")
        RECONCILIATION = "reconciliation", _("Reconciliation")
        EXPIRY = "expiry", _("Expiry of unpaid deposits")
        STATEMENTS = "statements", _("Monthly statements")
        RECEIPTS = "receipts", _("Sweep of unsent receipts")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FOUND_PROBLEMS = "found_problems", _("Found problems")
        FAILED = "failed", _("Failed")
        ABANDONED = "abandoned", _("Abandoned (worker died)")

    kind = models.CharField(max_length=16, choices=Kind.choices, verbose_name=_("kind"))
    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("facility"),
    )
    month = models.DateField(null=True, blank=True, verbose_name=_("month"))
    trigger = models.CharField(max_length=16, default="schedule", verbose_name=_("trigger"))
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RUNNING, verbose_name=_("status")
    )
    started_at = models.DateTimeField(verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))
    counts = models.JSONField(default=dict, blank=True, verbose_name=_("counts"))
    progress_done = models.PositiveIntegerField(default=0, verbose_name=_("progress done"))
    progress_total = models.PositiveIntegerField(default=0, verbose_name=_("progress total"))
    error = models.TextField(blank=True, verbose_name=_("error"))

    class Meta:
        verbose_name = _("scheduled run")
        verbose_name_plural = _("scheduled runs")
        indexes = [models.Index(fields=["kind", "-started_at"], name="scheduled_run_kind_newest")]

    def __str__(self):
        where = f" {self.facility.code}" if self.facility_id else ""
        month = f" {self.month:%Y-%m}" if self.month else ""
        return f"{self.get_kind_display()}{where}{month} ({self.get_status_display()})"


class ReconciliationFinding(models.Model):
    run = models.ForeignKey(
        ScheduledRun, on_delete=models.CASCADE, related_name="findings", verbose_name=_("run")
    )
    check_name = models.CharField(max_length=64, verbose_name=_("check name"))
    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("facility"),
    )
    subject = models.CharField(max_length=100, verbose_name=_("subject"))
    expected = models.CharField(max_length=100, verbose_name=_("expected"))
    actual = models.CharField(max_length=100, verbose_name=_("actual"))

    class Meta:
        verbose_name = _("reconciliation finding")
        verbose_name_plural = _("reconciliation findings")

    def __str__(self):
        return f"{self.check_name}: {self.subject} expected {self.expected}, found {self.actual}"


class Statement(models.Model):
    """An inmate's monthly statement, kept as HTML and PDF."""

    inmate = models.ForeignKey(
        "facilities.Inmate",
        on_delete=models.PROTECT,
        related_name="statements",
        verbose_name=_("inmate"),
    )
    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("facility"),
    )
    month = models.DateField(verbose_name=_("month"))
    opening_fen = models.BigIntegerField(verbose_name=_("opening fen"))
    closing_fen = models.BigIntegerField(verbose_name=_("closing fen"))
    html = models.TextField(verbose_name=_("html"))
    pdf = models.BinaryField(verbose_name=_("pdf"))
    created_at = models.DateTimeField(verbose_name=_("created at"))

    class Meta:
        verbose_name = _("statement")
        verbose_name_plural = _("statements")
        constraints = [
            models.UniqueConstraint(
                fields=["inmate", "month"], name="statement_one_per_inmate_month"
            )
        ]

    def __str__(self):
        return f"Statement {self.inmate_id} {self.month:%Y-%m}"


class StaffRequest(models.Model):
    """A trust officer's money request (maker-checker): who asked, why, for what, and what
    became of it. One that needs a second trust officer waits ``requested`` until another
    trust officer of the same facility approves it (then it posts under the system key
    ``staff-request:<id>`` and is ``executed``) or someone rejects it (nothing moves). One that
    needs no approval is executed when asked. Written by ``ledger.services.requests``."""

    class Kind(models.TextChoices):
        CREDIT = "credit", _("Adjustment: credit")
        DEBIT = "debit", _("Adjustment: debit")
        HOLD = "hold", _("Hold money")
        HOLD_RELEASE = "hold_release", _("Release held money")
        FREEZE = "freeze", _("Freeze the account")
        UNFREEZE = "unfreeze", _("Unfreeze the account")
        REVERSAL = "reversal", _("Reverse a staff transaction")
        RELEASE_PAYOUT = "release_payout", _("Release the inmate and pay out")
        POLICY_CHANGE = "policy_change", _("Change the facility's money policy")

    class State(models.TextChoices):
        REQUESTED = "requested", _("Waiting for approval")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        WITHDRAWN = "withdrawn", _("Withdrawn by the requester")
        EXECUTED = "executed", _("Executed")

    AMOUNT_KINDS = (Kind.CREDIT, Kind.DEBIT, Kind.HOLD, Kind.HOLD_RELEASE)

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    state = models.CharField(
        _("state"), max_length=16, choices=State.choices, default=State.REQUESTED
    )
    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("facility"),
    )
    inmate = models.ForeignKey(
        "facilities.Inmate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="staff_requests",
        limit_choices_to={"status": "active"},
        verbose_name=_("inmate"),  # none for a change of the facility's policy
    )
    amount_fen = models.BigIntegerField(_("amount (fen)"), null=True, blank=True)
    policy_changes = models.JSONField(
        _("policy changes"),
        default=dict,
        blank=True,
        help_text=_('For a policy change: {field: {"from": value, "to": value}}.'),
    )
    target_transaction = models.ForeignKey(
        Transaction,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("transaction to reverse"),
    )
    reason = models.TextField(_("reason"))
    needs_approval = models.BooleanField(_("needs a second trust officer"), default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    requested_at = models.DateTimeField(_("requested at"))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("approved or rejected by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.TextField(_("decision note"), blank=True)
    transaction = models.OneToOneField(
        Transaction,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="staff_request",
        verbose_name=_("journal transaction"),
    )
    account_event = models.OneToOneField(
        AccountEvent,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="staff_request",
        verbose_name=_("account event"),
    )
    executed_at = models.DateTimeField(_("executed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("money request")
        verbose_name_plural = _("money requests")
        indexes = [
            models.Index(fields=["facility", "state", "-requested_at"], name="staff_request_queue")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_fen__isnull=True) | Q(amount_fen__gt=0),
                name="staff_request_amount_positive",
            ),
            models.CheckConstraint(
                condition=~Q(state="executed") | Q(executed_at__isnull=False),
                name="staff_request_executed_has_time",
            ),
            # The requester's own decision can only be to withdraw; a rejection and an
            # approval are always someone else's.
            models.CheckConstraint(
                condition=~Q(decided_by=F("requested_by")) | Q(state="withdrawn"),
                name="staff_request_only_withdrawn_by_requester",
            ),
            models.CheckConstraint(
                condition=Q(kind="policy_change", inmate__isnull=True)
                | (~Q(kind="policy_change") & Q(inmate__isnull=False)),
                name="staff_request_inmate_unless_policy_change",
            ),
        ]
        permissions = [
            (
                "approve_policy",
                "Can approve another facility administrator's policy change",
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.get_kind_display()} ({self.get_state_display()})"

    @property
    def is_policy_change(self) -> bool:
        return self.kind == self.Kind.POLICY_CHANGE


class BatchChunk(models.Model):
    """One claimable piece of a scheduled run (a range of inmate ids, or one reconciliation
    check), so several workers share a run without overlap or gaps.

    A worker claims a pending chunk (or one whose claim is older than the claim timeout: its
    worker died) by raising ``attempt``; it then does the chunk's work and marks it done in one
    transaction that first checks ``attempt`` is still its own, so a chunk's work commits once
    however many workers tried it (``ledger.chunks``)."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        CLAIMED = "claimed", _("Claimed")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    run = models.ForeignKey(
        ScheduledRun, on_delete=models.CASCADE, related_name="chunks", verbose_name=_("run")
    )
    number = models.PositiveIntegerField(_("number"))
    # The chunk's inmates are those with low_id < id <= high_id; a check's name otherwise.
    low_id = models.BigIntegerField(_("lowest inmate id (exclusive)"), default=0)
    high_id = models.BigIntegerField(_("highest inmate id"), default=0)
    label = models.CharField(_("label"), max_length=64, blank=True)
    # About how many inmates (or items) the chunk covers, for the run's progress.
    size = models.PositiveIntegerField(_("size"), default=0)
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default="pending")
    attempt = models.PositiveIntegerField(_("attempt"), default=0)
    worker = models.CharField(_("worker"), max_length=200, blank=True)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("batch chunk")
        verbose_name_plural = _("batch chunks")
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="batch_chunk_run_number"),
        ]
        indexes = [
            # The claim's search: a run's chunks not done yet, in order.
            models.Index(
                fields=["run", "number"],
                condition=Q(state__in=["pending", "claimed"]),
                name="batch_chunk_open",
            ),
        ]

    def __str__(self):
        return f"{self.run_id}/{self.number} ({self.get_state_display()})"
