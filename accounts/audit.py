"""The audit trail (django-auditlog): who changed what, when, from where, and at which facility.

Every change to the registered models, whoever makes it (the admin, a service, a task), becomes a
``LogEntry`` with the person signed in (``AuditlogMiddleware``) and the changed fields. Each entry
also records the facility it concerns (``additional_data.facility_id``), so auditors can filter
by facility and staff see only their facilities' entries. Money itself is in the append-only
journal (who, approver, why on each transaction); a money request's life (asked, approved or
rejected, executed) is logged here through ``ledger.StaffRequest``. Failed sign-ins are logged
too, against the user model, with the username tried and the address.

Secrets are never logged: password, PIN and device key hashes and card tokens are excluded.

The trail is append-only in the database (``accounts.models.AuditEntry``), so everything an
entry says is decided before it is written: the facility comes from the audited object's
``get_additional_data`` (which auditlog reads at insert), and the person from the request
(``AuditlogMiddleware``) or, for a service given the staff member, ``acting_as``. Changes that a
single ``UPDATE`` or a bulk insert makes (an order picked, a roster imported) bypass model
signals; their services write an entry themselves with ``record``.
"""

import contextlib
from contextvars import ContextVar

from auditlog.models import LogEntry
from auditlog.registry import auditlog
from axes.signals import user_locked_out
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.contrib.contenttypes.models import ContentType
from django.db.models.signals import pre_save
from django.utils.translation import gettext_lazy as _

from .admin_scope import facility_path_for

AUDITED = {
    # label: fields never written to the trail
    "facilities.Facility": (),
    "facilities.HousingUnit": (),
    "facilities.Grade": (),  # spending limits: who raised one, and when
    "facilities.FestivalMonth": (),  # when the festival limits apply
    "facilities.Inmate": ("pin_hash", "card_token"),
    "facilities.KioskDevice": ("key_hash",),
    "accounts.User": ("password", "last_login"),
    "accounts.FacilityAssignment": (),
    "accounts.DepositorLink": (),  # a family's link and the staff decision on it, with why
    "accounts.DepositorBlock": (),
    "catalog.Restriction": (),
    "ledger.StaffRequest": (),
    "ledger.AccountEvent": ("request_hash",),
    "catalog.Dispute": ("request_hash", "filed_response"),  # each decision: who, when, what
    "catalog.PriceChange": (),
    "django_celery_beat.PeriodicTask": ("last_run_at", "total_run_count"),
    # The catalogue and each facility's shelf: a product's names, limits and availability, a
    # facility's stock as a clerk corrects it (sales and refunds move stock by UPDATEs, which
    # the trail does not see: the orders are their record).
    "catalog.Category": (),
    "catalog.Product": (),
    "catalog.FacilityProduct": (),
    # A facility's own merchant account: switched on or off, its id (never its secrets).
    "payments.MerchantAccount": ("secrets_encrypted",),
    # Deposit monitoring: rules, held deposits (their decisions, single UPDATEs, are written by
    # ``monitoring.services``), auto-accepts and review deadlines.
    "monitoring.Rule": (),
    "monitoring.Hold": (),
    "monitoring.AutoAccept": (),
    "monitoring.FacilityMonitoring": (),
}
FAILED_SIGN_IN = "failed sign-in"
SIGN_IN = "sign-in"
LOCKED_OUT = "locked out"
EXPORT = "data export"
ACCOUNT_CLOSED = "account closed"
ROSTER_IMPORT = "roster import"
EVENT_LABELS = {
    SIGN_IN: _("Sign-in"),
    FAILED_SIGN_IN: _("Failed sign-in"),
    LOCKED_OUT: _("Locked out"),
    EXPORT: _("Data export"),
    ACCOUNT_CLOSED: _("Account closed"),
    ROSTER_IMPORT: _("Roster import"),
}

_acting: ContextVar = ContextVar("commissary_audit_actor", default=None)


@contextlib.contextmanager
def acting_as(user):
    """Entries written inside name ``user`` as the actor when the request has not named one
    (a service called by a task or a script with the staff member it acts for)."""
    token = _acting.set(user)
    try:
        yield
    finally:
        _acting.reset(token)


def _fill_actor(sender, instance, **kwargs):
    actor = _acting.get()
    if instance._state.adding and instance.actor_id is None and actor is not None:
        instance.actor = actor
        instance.actor_email = getattr(actor, "email", None)


def record(
    *,
    model,
    object_pk,
    object_repr: str,
    changes: dict,
    facility_id: int | None,
    actor_id: int | None = None,
    actor_email: str | None = None,
    action: int = LogEntry.Action.UPDATE,
    event: str | None = None,
    remote_addr: str | None = None,
    **additional,
) -> LogEntry:
    """Write one entry for a change no model signal saw (an ``UPDATE`` of one column, a bulk
    insert, a download). ``changes`` maps a field to ``[old, new]``."""
    additional_data = dict(additional)
    if facility_id is not None:
        additional_data["facility_id"] = facility_id
    if event is not None:
        additional_data["event"] = event
    entry = LogEntry(
        content_type=ContentType.objects.get_for_model(model),
        object_pk=str(object_pk),
        object_id=object_pk if isinstance(object_pk, int) else None,
        object_repr=object_repr,
        action=action,
        changes=changes,
        actor_id=actor_id,
        remote_addr=remote_addr,
        additional_data=additional_data or None,
        actor_email=actor_email,
    )
    if actor_id is not None and actor_email is None:
        entry.actor_email = (
            get_user_model().objects.filter(pk=actor_id).values_list("email", flat=True).first()
        )
    entry.save()
    return entry


def facility_id_of(instance) -> int | None:
    path = facility_path_for(type(instance))
    if path is None:
        return None
    if path == "pk":
        return instance.pk
    target = instance
    parts = path.split("__")
    for part in parts[:-1]:
        target = getattr(target, part, None)
        if target is None:
            return None
    return getattr(target, f"{parts[-1]}_id", None)


def register_audited_models() -> None:
    for label, secret_fields in AUDITED.items():
        try:
            model = apps.get_model(label)
        except LookupError:
            continue  # an app not installed here
        if not auditlog.contains(model):
            # Own columns only: reverse relations (an inmate's deposits) are not its changes.
            own_fields = [field.name for field in model._meta.concrete_fields]
            auditlog.register(model, include_fields=own_fields, exclude_fields=list(secret_fields))
        if "get_additional_data" not in model.__dict__:
            # auditlog's hook for what an entry carries besides the changes, read before the
            # insert (the entry cannot be updated afterwards): the facility it concerns.
            model.get_additional_data = _facility_of_audited
    pre_save.connect(_fill_actor, sender=LogEntry, dispatch_uid="accounts.audit.fill_actor")
    user_login_failed.connect(record_failed_sign_in, dispatch_uid="accounts.audit.failed_sign_in")
    user_logged_in.connect(record_sign_in, dispatch_uid="accounts.audit.sign_in")
    user_locked_out.connect(record_lockout, dispatch_uid="accounts.audit.locked_out")


def _facility_of_audited(instance) -> dict | None:
    """Each entry is stamped with the facility it concerns, for filtering and scoping."""
    if type(instance)._meta.label == "accounts.User":
        facility_id = _only_facility_of(instance)
    else:
        facility_id = facility_id_of(instance)
    return {"facility_id": facility_id} if facility_id is not None else None


def _only_facility_of(user) -> int | None:
    """A person's facility when they belong to exactly one: a staff member's one assignment,
    a depositor's links all at one facility (their entries are that facility's); entries about
    people of several facilities or none are for superusers."""
    if user.pk is None:
        return None
    facility_ids = list(user.facility_assignments.values_list("facility_id", flat=True)[:2])
    if not facility_ids and not user.is_staff:
        facility_ids = list(
            user.depositor_links.values_list("inmate__facility_id", flat=True).distinct()[:2]
        )
    return facility_ids[0] if len(facility_ids) == 1 else None


def _address(request) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


def record_sign_in(sender, request, user, **kwargs):
    """A successful sign-in (admin or family pages), with the address."""
    record(
        model=type(user),
        object_pk=user.pk,
        object_repr=user.get_username(),
        changes={SIGN_IN: ["", user.get_username()]},
        facility_id=_only_facility_of(user),
        actor_id=user.pk,
        action=LogEntry.Action.ACCESS,
        event=SIGN_IN,
        remote_addr=_address(request),
    )


def record_failed_sign_in(sender, credentials, request=None, **kwargs):
    """A failed sign-in, with the username tried (never the password) and the address; for
    a known staff member of one facility, visible to that facility's auditors."""
    # The admin sends the username; the family pages (allauth) the email address.
    username = str(credentials.get("username") or credentials.get("email") or "")[:150]
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None and "@" in username:
        user = user_model.objects.filter(email__iexact=username).order_by("pk").first()
    additional_data = {"event": FAILED_SIGN_IN}
    facility_id = _only_facility_of(user) if user is not None else None
    if facility_id is not None:
        additional_data["facility_id"] = facility_id
    LogEntry.objects.create(
        content_type=ContentType.objects.get_for_model(user_model),
        object_pk=str(user.pk) if user else "",
        object_id=user.pk if user else None,
        object_repr=username,
        action=LogEntry.Action.ACCESS,
        changes={FAILED_SIGN_IN: [username, ""]},
        remote_addr=request.META.get("REMOTE_ADDR") if request is not None else None,
        additional_data=additional_data,
    )


def record_lockout(sender, request, username, ip_address, **kwargs):
    """django-axes locked a name out at an address after too many failed sign-ins."""
    user_model = get_user_model()
    username = str(username or "")[:150]
    user = user_model.objects.filter(username=username).first()
    if user is None and "@" in username:
        user = user_model.objects.filter(email__iexact=username).order_by("pk").first()
    record(
        model=user_model,
        object_pk=user.pk if user else "",
        object_repr=username,
        changes={LOCKED_OUT: ["", username]},
        facility_id=_only_facility_of(user) if user is not None else None,
        action=LogEntry.Action.ACCESS,
        event=LOCKED_OUT,
        remote_addr=ip_address,
    )
