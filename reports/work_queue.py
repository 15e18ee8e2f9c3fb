"""What waits for a staff member: the queues of the admin home and of the daily digest.

Each queue is work someone must do (approve a money request, decide a family's link, pick
orders, look at a reconciliation finding), counted over the facilities the staff member works
at and shown only to those holding the permission to act on it. All of a viewer's queues are
counted in one statement (a ``UNION ALL`` of one aggregate per queue), however many facilities
they cover. A money request never waits for the person who asked for it, and a superuser
approves only where assigned (``accounts.selectors.may_approve``), so that queue counts the
viewer's assigned facilities even for a superuser.
"""

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from django.apps import apps
from django.db.models import (
    BigIntegerField,
    CharField,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    Min,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Cast, Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import DepositorLink, FacilityAssignment
from accounts.selectors import facility_ids_for
from catalog.models import FacilityProduct, Order, RefusedOrder
from catalog.selectors import LOW_STOCK_AT
from ledger.models import Deposit, ReconciliationFinding, ScheduledRun, StaffRequest
from monitoring.models import FacilityMonitoring, Hold

# A kiosk refusal stays in the clerks' queue this long (it needs no decision, only a look).
REFUSED_ORDERS_WINDOW = dt.timedelta(hours=24)


@dataclass(frozen=True)
class QueueLine:
    """One queue as the viewer sees it: how many wait, since when, and where to act."""

    key: str
    label: str
    count: int
    oldest: dt.datetime | None
    url: str

    @property
    def is_empty(self) -> bool:
        return self.count == 0


@dataclass(frozen=True)
class _Queue:
    key: str
    label: str
    permission: str
    # (viewer, facility ids or None for all, now) -> an aggregate queryset of one row
    # (count, oldest, subject) and the list's URL given that row's subject
    rows: object
    url: object


def _scoped(queryset, path: str, facility_ids):
    return queryset if facility_ids is None else queryset.filter(**{f"{path}__in": facility_ids})


def _row(queryset, key: str, *, oldest=None, subject=None):
    """``queryset`` folded into one row: (key, count, oldest instant, a subject id)."""
    return (
        queryset.annotate(
            queue=Value(key, output_field=CharField()),
        )
        .values("queue")
        .annotate(
            count=Count("pk"),
            oldest=Min(oldest) if oldest else Cast(Value(None), DateTimeField()),
            subject=Max(subject) if subject else Cast(Value(None), BigIntegerField()),
        )
        .values_list("queue", "count", "oldest", "subject")
        .order_by()
    )


def _changelist(model_label: str, **params) -> str:
    app_label, model_name = model_label.split(".")
    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def _money_requests(viewer, facility_ids, now):
    # Approval happens only where the approver is assigned, superusers included.
    assigned = FacilityAssignment.objects.filter(user_id=viewer.pk).values("facility_id")
    waiting = StaffRequest.objects.filter(
        state=StaffRequest.State.REQUESTED, needs_approval=True, facility_id__in=assigned
    ).exclude(requested_by_id=viewer.pk)
    return _row(waiting, "money_requests", oldest="requested_at")


def _family_links(viewer, facility_ids, now):
    pending = _scoped(
        DepositorLink.objects.filter(status=DepositorLink.Status.PENDING),
        "inmate__facility_id",
        facility_ids,
    )
    return _row(pending, "family_links", oldest="created_at")


def _findings(viewer, facility_ids, now):
    """Findings of the newest finished reconciliation that covered the viewer's facilities
    (their own run or one of the whole ledger): what that run still reports."""
    runs = ScheduledRun.objects.filter(
        kind=ScheduledRun.Kind.RECONCILIATION,
        status__in=(ScheduledRun.Status.SUCCEEDED, ScheduledRun.Status.FOUND_PROBLEMS),
    )
    if facility_ids is not None:
        runs = runs.filter(Q(facility_id__in=facility_ids) | Q(facility__isnull=True))
    newest = runs.order_by("-started_at", "-id").values("pk")[:1]
    findings = ReconciliationFinding.objects.filter(run_id=Subquery(newest))
    if facility_ids is not None:
        findings = findings.filter(Q(facility_id__in=facility_ids) | Q(facility__isnull=True))
    return _row(findings, "findings", oldest="run__started_at", subject="run_id")


def _stuck_deposits(viewer, facility_ids, now):
    stuck = _scoped(
        Deposit.objects.filter(status=Deposit.Status.CREATED, expires_at__lt=now),
        "facility_id",
        facility_ids,
    )
    return _row(stuck, "stuck_deposits", oldest="expires_at")


def _orders_to_pick(viewer, facility_ids, now):
    placed = _scoped(Order.objects.filter(status=Order.Status.PLACED), "facility_id", facility_ids)
    return _row(placed, "orders_to_pick", oldest="created_at")


def _refused_orders(viewer, facility_ids, now):
    recent = _scoped(
        RefusedOrder.objects.filter(created_at__gte=now - REFUSED_ORDERS_WINDOW),
        "facility_id",
        facility_ids,
    )
    return _row(recent, "refused_orders", oldest="created_at")


def _disputes(viewer, facility_ids, now):
    dispute = apps.get_model("catalog", "Dispute")
    names = {field.name for field in dispute._meta.get_fields()}
    path = "facility_id" if "facility" in names else "order__facility_id"
    open_disputes = _scoped(dispute.objects.filter(status="open"), path, facility_ids)
    return _row(open_disputes, "disputes", oldest="created_at")


def _pending_holds(facility_ids):
    return _scoped(Hold.objects.filter(state=Hold.State.PENDING), "facility_id", facility_ids)


def _holds_to_review(viewer, facility_ids, now):
    return _row(_pending_holds(facility_ids), "holds_to_review", oldest="created_at")


# A facility without its own review deadlines uses the model's default.
DEFAULT_ATTENTION_DAYS = FacilityMonitoring._meta.get_field("attention_days").default


def _holds_needing_attention(viewer, facility_ids, now):
    """Holds undecided for the facility's ``attention_days`` or longer (the review list's
    *needs attention* column)."""
    # Days as a plain integer: SQLite multiplies a duration only by an IntegerField (not the
    # column's PositiveSmallIntegerField), and refuses the whole statement otherwise.
    days = Coalesce(
        F("facility__monitoring__attention_days"),
        DEFAULT_ATTENTION_DAYS,
        output_field=IntegerField(),
    )
    waited = ExpressionWrapper(
        days * Value(dt.timedelta(days=1)),
        output_field=DurationField(),
    )
    late = (
        _pending_holds(facility_ids)
        .alias(waited=waited)
        .filter(created_at__lte=Value(now, output_field=DateTimeField()) - F("waited"))
    )
    return _row(late, "holds_needing_attention", oldest="created_at")


def _low_stock(viewer, facility_ids, now):
    low = _scoped(
        FacilityProduct.objects.filter(
            is_available=True, product__is_active=True, stock__lte=LOW_STOCK_AT
        ),
        "facility_id",
        facility_ids,
    )
    return _row(low, "low_stock")


def _low_stock_url(subject, now):
    return _changelist("catalog.facilityproduct", stock__lte=LOW_STOCK_AT, is_available__exact=1)


def _findings_url(subject, now):
    if subject is None:
        return _changelist("ledger.scheduledrun", kind__exact="reconciliation")
    return reverse("admin:ledger_scheduledrun_change", args=[subject])


def _queues() -> list[_Queue]:
    """Every queue this installation has (the disputes only once the catalog has them), in
    the order the home page shows them."""
    queues = [
        _Queue(
            "money_requests",
            _("Money requests waiting for your approval"),
            "ledger.approve_money",
            _money_requests,
            lambda subject, now: _changelist("ledger.staffrequest", awaiting="you"),
        ),
        _Queue(
            "family_links",
            _("Family links waiting for a decision"),
            "accounts.change_depositorlink",
            _family_links,
            lambda subject, now: _changelist("accounts.depositorlink", status__exact="pending"),
        ),
        _Queue(
            "stuck_deposits",
            _("Deposits unpaid past their reservation"),
            "payments.change_payment",
            _stuck_deposits,
            lambda subject, now: _changelist(
                "ledger.deposit", status__exact="created", expires_at__lt=now.isoformat()
            ),
        ),
        _Queue(
            "findings",
            _("Open reconciliation findings"),
            "ledger.view_scheduledrun",
            _findings,
            _findings_url,
        ),
    ]
    queues += [
        _Queue(
            "orders_to_pick",
            _("Orders to pick"),
            "catalog.change_order",
            _orders_to_pick,
            lambda subject, now: _changelist("catalog.order", status__exact="placed"),
        ),
    ]
    queues += [
        _Queue(
            "holds_to_review",
            _("Deposits to review"),
            "monitoring.decide_hold",
            _holds_to_review,
            lambda subject, now: _changelist("monitoring.hold", state__exact="pending"),
        ),
        _Queue(
            "holds_needing_attention",
            _("Deposits to review needing attention"),
            "monitoring.decide_hold",
            _holds_needing_attention,
            lambda subject, now: _changelist("monitoring.hold", state__exact="pending"),
        ),
    ]
    if _has_model("catalog", "Dispute"):
        queues.append(
            _Queue(
                "disputes",
                _("Open disputes"),
                "catalog.change_dispute",
                _disputes,
                lambda subject, now: _changelist("catalog.dispute", status__exact="open"),
            )
        )
    queues += [
        _Queue(
            "refused_orders",
            _("Orders refused at the kiosk in the last 24 hours"),
            "catalog.change_order",
            _refused_orders,
            lambda subject, now: _changelist(
                "catalog.refusedorder",
                created_at__gte=(now - REFUSED_ORDERS_WINDOW).isoformat(),
            ),
        ),
        _Queue(
            "low_stock",
            _("Products running low"),
            "catalog.change_facilityproduct",
            _low_stock,
            _low_stock_url,
        ),
    ]
    return queues


def _has_model(app_label: str, model_name: str) -> bool:
    try:
        apps.get_model(app_label, model_name)
    except LookupError:
        return False
    return True


def work_queue_for(viewer, *, now: dt.datetime | None = None) -> list[QueueLine]:
    """The queues ``viewer`` may act on, each with its count over the viewer's facilities, in
    one database round trip. Empty queues are listed too (with a count of 0)."""
    now = now or timezone.now()
    if not (viewer.is_active and viewer.is_staff):
        return []
    facility_ids = facility_ids_for(viewer)
    queues = [queue for queue in _queues() if viewer.has_perm(queue.permission)]
    if not queues:
        return []
    parts = [queue.rows(viewer, facility_ids, now) for queue in queues]
    rows = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
    found = {key: (count, oldest, subject) for key, count, oldest, subject in rows}
    lines = []
    for queue in queues:
        count, oldest, subject = found.get(queue.key, (0, None, None))
        lines.append(
            QueueLine(
                key=queue.key,
                label=str(queue.label),
                count=count,
                oldest=oldest if count else None,
                url=queue.url(subject, now),
            )
        )
    return lines


def anything_waits(lines: list[QueueLine]) -> bool:
    return any(not line.is_empty for line in lines)
