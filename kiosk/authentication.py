"""Who is calling: the kiosk device (``Authorization: Kiosk <key>``), then, for inmate-scoped
requests, the inmate's session at that kiosk (``X-Inmate-Session: <token>``). Both are checked
on every request; throttles count per device."""

from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, throttling

from commissary import logs
from commissary.cache import take_slot
from commissary.db import first_read
from facilities.models import Facility, KioskDevice, hash_device_key
from ledger.services.posting import execute

from . import services

SESSION_HEADER = "X-Inmate-Session"
SESSION_META_KEY = "HTTP_X_INMATE_SESSION"


class KioskDeviceAuthentication(authentication.BaseAuthentication):
    """A request without an active key of a kiosk is refused with 401 ``not_authenticated``.
    ``request.auth`` is the device; there is no Django user. The inmate session the request
    names (``X-Inmate-Session``) is read in the same statement, into ``request.kiosk_session``
    (a ``services.SessionRead`` or None); the view decides on it after the throttles."""

    keyword = "Kiosk"

    def authenticate(self, request):
        scheme, _space, key = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        key = key.strip()
        if scheme != self.keyword or not key or len(key) > 200:
            raise exceptions.AuthenticationFailed(
                _("Send the kiosk's key as 'Authorization: Kiosk <key>'."),
                code="not_authenticated",
            )
        now = timezone.now()
        found = _active_device(
            hash_device_key(key), token=request.META.get(SESSION_META_KEY), now=now
        )
        if found is None:
            raise exceptions.AuthenticationFailed(
                _("This kiosk key is unknown or has been revoked."), code="not_authenticated"
            )
        device, request.kiosk_session = found
        session = request.kiosk_session
        logs.bind(
            facility_id=device.facility_id,
            kiosk_id=device.pk,
            inmate_id=session.inmate_id if session else None,
        )
        request.kiosk_checked_at = now
        return (None, device)

    def authenticate_header(self, request):
        return f'{self.keyword} realm="kiosk"'


_ACTIVE_DEVICE_SQL = (
    "SELECT d.id, d.name, d.key_prefix, f.id, f.code, f.name, f.timezone, f.currency, "  # noqa: S608 - table and column names and placeholder lists; values are bound
    f"{services.SESSION_COLUMNS} "
    "FROM facilities_kioskdevice d JOIN facilities_facility f ON f.id = d.facility_id "
    f"{services.session_join('d')} "
    "WHERE d.key_hash = %s AND d.is_active AND d.revoked_at IS NULL"
)


def _active_device(
    key_hash: str, *, token, now
) -> tuple[KioskDevice, services.SessionRead | None] | None:
    """The active device with this key and the facility fields the API reads, with the live
    session of ``token`` at it, in one statement (every kiosk request starts here). Read-only
    instances: nothing saves them."""
    column_params, join_params = services.session_join_params(token, now)

    def read(cursor):
        execute(cursor, _ACTIVE_DEVICE_SQL, [*column_params, *join_params, key_hash])
        return cursor.fetchone()

    # The request's first statement, and its connection health check (commissary.db).
    row = first_read(read)
    if row is None:
        return None
    device_id, name, key_prefix, facility_id, code, facility_name, timezone_name, currency = row[:8]
    # As the ORM builds a row it read (Django's positional fast path): the columns read, the
    # others deferred (read from the database if ever asked for, never a made-up default).
    facility = Facility.from_db(
        DEFAULT_DB_ALIAS,
        _FACILITY_FIELDS,
        (facility_id, code, facility_name, timezone_name, currency),
    )
    device = KioskDevice.from_db(
        DEFAULT_DB_ALIAS,
        _DEVICE_FIELDS,
        (device_id, facility_id, name, key_prefix, key_hash, True),
    )
    device.facility = facility
    return device, services.session_read_of(row[8:])


# The fields of each model the device read fills in; ``from_db`` takes their values in the
# models' field order.
_FACILITY_FIELDS = frozenset({"id", "code", "name", "timezone", "currency"})
_DEVICE_FIELDS = frozenset({"id", "facility_id", "name", "key_prefix", "key_hash", "is_active"})


class DeviceThrottle(throttling.SimpleRateThrottle):
    """Requests per kiosk device, shared by every web worker through the cache: at most the
    rate's number of requests in any window of its length (a sliding window, ``take_slot``: one
    atomic Redis round trip a request). The fixed windows used before let a device send twice
    its rate across a window's edge (28 sign-ins against 20 a minute); DRF's own throttle reads
    and rewrites the list of every request time in the window through two cache calls, a race
    between workers."""

    scope = "kiosk_device"
    retry_after = None

    def get_cache_key(self, request, view):
        device = request.auth
        if not isinstance(device, KioskDevice):
            return None
        return self.cache_format % {"scope": self.scope, "ident": device.pk}

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self.retry_after = take_slot(
            "default", key, limit=self.num_requests, window_seconds=self.duration, now=self.timer()
        )
        return self.retry_after is None

    def wait(self):
        return self.retry_after


class SignInThrottle(DeviceThrottle):
    """Sign-in attempts per kiosk device (the PIN lock-out is per inmate, this is per kiosk)."""

    scope = "kiosk_sign_in"


class KioskDeviceScheme(OpenApiAuthenticationExtension):
    """Documents both headers: the device key on every request, and the inmate session on
    the views that act for an inmate (``needs_inmate_session``)."""

    target_class = KioskDeviceAuthentication
    name = ["kioskKey", "inmateSession"]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`Kiosk <device key>`: the key issued for this kiosk in the admin.",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": SESSION_HEADER,
                "description": (
                    "The `session` token from `POST sessions`. Bound to the kiosk that opened "
                    "it; expires after 10 idle minutes and on sign-out."
                ),
            },
        ]

    def get_security_requirement(self, auto_schema):
        if getattr(auto_schema.view, "needs_inmate_session", False):
            return {"kioskKey": [], "inmateSession": []}
        return {"kioskKey": []}
