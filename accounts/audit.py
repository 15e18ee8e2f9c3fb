"""The audit trail (django-auditlog): who changed what, when, from where, and at which facility.

Every change to the registered models, whoever makes it (the admin, a service, a task), becomes a
``LogEntry`` with the person signed in (``AuditlogMiddleware``) and the changed fields. Each entry
also records the facility it concerns (``additional_data.facility_id``), so auditors can filter
by facility and staff see only their facilities' entries. Money itself is in the append-only
journal (who, approver, why on each transaction); a money request's life (asked, approved or
rejected, executed) is logged here through ``ledger.StaffRequest``. Failed sign-ins are logged
too, against the user model, with the username tried and the address.

Secrets are never logged: password, PIN and device key hashes and card tokens are excluded.
"""

from auditlog.models import LogEntry
from auditlog.registry import auditlog
from auditlog.signals import post_log
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.contrib.contenttypes.models import ContentType

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
    "ledger.StaffRequest": (),
    "ledger.AccountEvent": ("request_hash",),
    "catalog.Dispute": ("request_hash", "filed_response"),  # each decision: who, when, what
    "catalog.PriceChange": (),
    "django_celery_beat.PeriodicTask": ("last_run_at", "total_run_count"),
}
FAILED_SIGN_IN = "failed sign-in"


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
    post_log.connect(record_facility, dispatch_uid="accounts.audit.record_facility")
    user_login_failed.connect(record_failed_sign_in, dispatch_uid="accounts.audit.failed_sign_in")


def record_facility(sender, instance, log_entry=None, **kwargs):
    """Stamp each entry with the facility it concerns, for filtering and scoping."""
    if log_entry is None:
        return
    if type(instance)._meta.label == "accounts.User":
        facility_id = _only_facility_of(instance)
    else:
        facility_id = facility_id_of(instance)
    if facility_id is not None:
        additional_data = {**(log_entry.additional_data or {}), "facility_id": facility_id}
        log_entry.additional_data = additional_data
        LogEntry.objects.filter(pk=log_entry.pk).update(additional_data=additional_data)


def _only_facility_of(user) -> int | None:
    """A person's facility when they work at exactly one (their entries are that facility's);
    entries about people of several facilities or none are for superusers."""
    facility_ids = list(user.facility_assignments.values_list("facility_id", flat=True)[:2])
    return facility_ids[0] if len(facility_ids) == 1 else None


def record_failed_sign_in(sender, credentials, request=None, **kwargs):
    """A failed sign-in, with the username tried (never the password) and the address; for
    a known staff member of one facility, visible to that facility's auditors."""
    username = str(credentials.get("username", ""))[:150]
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
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
