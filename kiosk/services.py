"""Kiosk sign-in and sessions: the only way an inmate is known to the kiosk API.

Five wrong PINs lock the inmate out of every kiosk for fifteen minutes. Each attempt is counted
before its PIN is checked, by one upsert on the inmate's own counter row (never a lock on the
inmate row), so attempts sent from many kiosks at once each get their own number, the lock-out
starts at the fifth, and no more than five PINs are checked whatever the burst.
"""

import datetime as dt
import hashlib
import math
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import connection
from django.utils import timezone

from commissary import errors
from commissary.db import replan_when_doubled
from facilities.models import Inmate, KioskDevice
from ledger.services.posting import execute

from .models import KioskSession, PinFailureCounter

MAX_PIN_FAILURES = 5
TOUCH_EVERY = dt.timedelta(seconds=15)
LOCKOUT = dt.timedelta(minutes=15)
_UNKNOWN_INMATE_PIN_HASH = None


def idle_timeout() -> dt.timedelta:
    return dt.timedelta(seconds=settings.KIOSK_SESSION_IDLE_SECONDS)


def hash_session_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _spend_pin_check_time(pin: str) -> None:
    """Check the PIN against a throwaway hash, so an unknown inmate costs what a known one does
    and the answer's timing does not tell which inmate numbers exist."""
    global _UNKNOWN_INMATE_PIN_HASH
    if _UNKNOWN_INMATE_PIN_HASH is None:
        _UNKNOWN_INMATE_PIN_HASH = make_password(secrets.token_hex(8))
    check_password(pin, _UNKNOWN_INMATE_PIN_HASH)


def _count_attempt(*, inmate_id: int, now: dt.datetime) -> tuple[int, dt.datetime | None]:
    """Count one sign-in attempt before its PIN is checked, and return the count and the end
    of the lock-out. One statement, so attempts from many kiosks at once each get their own
    number: the fifth starts the lock-out (a right PIN there still signs in, see
    ``_clear_attempts``), and from the sixth on the PIN is never checked. A count older than
    the lock-out window (or whose lock-out has ended) starts again from one."""
    stale_before = now - LOCKOUT
    with connection.cursor() as cursor:
        # ``execute`` adapts the instants as the ORM stores them (SQLite keeps them as text).
        execute(
            cursor,
            """
            INSERT INTO kiosk_pinfailurecounter AS c (inmate_id, failures, locked_until, updated_at)
            VALUES (%s, 1, NULL, %s)
            ON CONFLICT (inmate_id) DO UPDATE SET
              failures = CASE
                WHEN c.locked_until <= excluded.updated_at THEN 1
                WHEN c.locked_until IS NULL AND c.updated_at <= %s THEN 1
                ELSE c.failures + 1 END,
              locked_until = CASE
                WHEN c.locked_until <= excluded.updated_at THEN NULL
                WHEN c.locked_until IS NOT NULL THEN c.locked_until
                WHEN c.updated_at <= %s THEN NULL
                WHEN c.failures + 1 >= %s THEN %s
                ELSE NULL END,
              updated_at = excluded.updated_at
            RETURNING failures, locked_until
            """,
            [inmate_id, now, stale_before, stale_before, MAX_PIN_FAILURES, now + LOCKOUT],
        )
        attempt, locked_until = cursor.fetchone()
    return attempt, _instant(locked_until)


def _clear_attempts(*, inmate_id: int, attempt: int, now: dt.datetime) -> bool:
    """After a right PIN counted as attempt number ``attempt``: forget the attempts counted up
    to it (those counted after it stay, wrong or not yet checked) and end the lock-out, unless
    more than five attempts have been counted meanwhile: then the inmate is locked out and the
    right PIN is refused too, so a burst of guesses cannot sign in with the one it hit.
    Returns whether the sign-in may go on."""
    with connection.cursor() as cursor:
        execute(
            cursor,
            """
            UPDATE kiosk_pinfailurecounter SET
              failures = CASE WHEN failures > %s THEN failures - %s ELSE 0 END,
              locked_until = NULL,
              updated_at = %s
            WHERE inmate_id = %s AND failures <= %s
            RETURNING inmate_id
            """,
            [attempt, attempt, now, inmate_id, MAX_PIN_FAILURES],
        )
        return cursor.fetchone() is not None


def _instant(value) -> dt.datetime | None:
    """An instant read through a cursor: SQLite gives the ORM's text, PostgreSQL a datetime."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
        if timezone.is_naive(value):
            value = value.replace(tzinfo=dt.UTC)
    return value


def _locked_out(locked_until: dt.datetime | None, now: dt.datetime) -> errors.LockedOut:
    """The refusal, with the whole seconds until the lock-out ends (at least one)."""
    if locked_until is None:  # counted past the limit, its lock-out just ended: try again
        return errors.LockedOut(retry_after_seconds=1)
    return errors.LockedOut(
        retry_after_seconds=max(1, math.ceil((locked_until - now).total_seconds()))
    )


def sign_in(
    *,
    device: KioskDevice,
    pin,
    inmate_number: str | None = None,
    card: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[KioskSession, str]:
    """Open a session at this kiosk for the inmate of its facility with that number (or ID
    card token) and PIN. Returns the session and its token (shown once, stored hashed).

    Wrong number, card or PIN raise the same InvalidCredentials. Every attempt on a known
    inmate is counted before its PIN is checked (the count used to come after the check, so
    a burst of concurrent guesses all had their PIN checked, and a right one among them
    signed in and cleared the lock-out the others had just set). So at most five PINs are
    checked in a lock-out window however many arrive at once, and from the sixth attempt on
    every one raises LockedOut (with the seconds to wait), even with the right PIN. The
    count is its own statement, committed before the check (there is deliberately no
    transaction around the sign-in), so every concurrent attempt sees it."""
    now = now or timezone.now()
    if not isinstance(pin, str):
        raise errors.InvalidCredentials()
    inmates = Inmate.objects.filter(facility_id=device.facility_id, status=Inmate.Status.ACTIVE)
    if inmate_number is not None:
        inmate = inmates.filter(inmate_number=inmate_number).first()
    elif card is not None:
        inmate = inmates.filter(card_token=card).first()
    else:
        inmate = None
    if inmate is None:
        _spend_pin_check_time(pin)
        raise errors.InvalidCredentials()
    attempt, locked_until = _count_attempt(inmate_id=inmate.pk, now=now)
    if attempt > MAX_PIN_FAILURES:
        raise _locked_out(locked_until, now)
    if not inmate.check_pin(pin):
        raise errors.InvalidCredentials()
    if not _clear_attempts(inmate_id=inmate.pk, attempt=attempt, now=now):
        locked_until = (
            PinFailureCounter.objects.filter(inmate_id=inmate.pk)
            .values_list("locked_until", flat=True)
            .first()
        )
        raise _locked_out(locked_until, now)
    token = secrets.token_urlsafe(32)
    session = KioskSession.objects.create(
        token_hash=hash_session_token(token),
        device=device,
        inmate=inmate,
        created_at=now,
        last_seen_at=now,
    )
    # Every kiosk request reads its session by token (a prepared statement).
    replan_when_doubled(session.pk, ("kiosk_kiosksession",))
    return session, token


@dataclass(frozen=True, slots=True)
class SessionRead:
    """A live session as read with its kiosk (see ``session_join``): its id, its inmate, and
    whether its idle clock's last mark is older than TOUCH_EVERY."""

    session_id: int
    inmate_id: int
    is_clock_stale: bool


NOT_READ = object()


def session_join(device_alias: str) -> str:
    """The SQL joining a kiosk (``device_alias``) to its live session with the token hash,
    whose inmate is active in the kiosk's facility: a LEFT JOIN selecting the ``SessionRead``
    columns, with the parameters of ``session_join_params``. One definition of a live session
    for the device check (which reads it in the same statement) and ``touch_session``."""
    return (
        "LEFT JOIN (kiosk_kiosksession s JOIN facilities_inmate i ON i.id = s.inmate_id "
        "AND i.status = 'active') "
        f"ON s.token_hash = %s AND s.device_id = {device_alias}.id AND s.ended_at IS NULL "
        f"AND s.last_seen_at > %s AND i.facility_id = {device_alias}.facility_id"
    )


SESSION_COLUMNS = "s.id, s.inmate_id, s.last_seen_at <= %s"


def session_join_params(token, now: dt.datetime) -> tuple[list, list]:
    """(parameters of SESSION_COLUMNS, parameters of session_join); a token that cannot be
    one matches no session."""
    is_possible = isinstance(token, str) and 0 < len(token) <= 200
    token_hash = hash_session_token(token) if is_possible else None
    return [now - TOUCH_EVERY], [token_hash, now - idle_timeout()]


def session_read_of(columns) -> SessionRead | None:
    session_id, inmate_id, is_clock_stale = columns
    if session_id is None:
        return None
    return SessionRead(session_id, inmate_id, bool(is_clock_stale))


def touch_session(
    *, device: KioskDevice, token, now: dt.datetime | None = None, read=NOT_READ
) -> int:
    """The inmate id of a live session of this kiosk, its idle clock restarted. A session of
    another kiosk, signed out, idle too long, or whose inmate has left the kiosk's facility or
    been released, raises SessionExpired. ``read`` is the session as the device check already
    read it in the same statement (a SessionRead, or None for no live session); without it the
    session is read here.

    The check is a read; the idle clock is written only when its last mark is older than
    TOUCH_EVERY, so a busy kiosk's requests do not each commit a write (and wait for its flush
    to disk). A session therefore ends after 10 idle minutes counted from a request at most
    TOUCH_EVERY before the last one."""
    if not isinstance(token, str) or not token or len(token) > 200:
        raise errors.SessionExpired()
    now = now or timezone.now()
    with connection.cursor() as cursor:
        if read is NOT_READ:
            column_params, join_params = session_join_params(token, now)
            execute(
                cursor,
                f"SELECT {SESSION_COLUMNS} FROM facilities_kioskdevice d {session_join('d')} "  # noqa: S608 - table and column names, placeholder lists and a constant lock clause; values are bound
                "WHERE d.id = %s",
                [*column_params, *join_params, device.pk],
            )
            row = cursor.fetchone()
            read = session_read_of(row) if row else None
        if read is None:
            raise errors.SessionExpired()
        if read.is_clock_stale:
            # Conditional: a sign-out that committed meanwhile is not revived.
            execute(
                cursor,
                "UPDATE kiosk_kiosksession SET last_seen_at = %s "
                "WHERE id = %s AND ended_at IS NULL AND last_seen_at < %s",
                [now, read.session_id, now],
            )
    return read.inmate_id


def sign_out(*, device: KioskDevice, token, now: dt.datetime | None = None) -> None:
    """End the session; a session that is already over (or another kiosk's) is refused."""
    touch_session(device=device, token=token, now=now)
    KioskSession.objects.filter(
        token_hash=hash_session_token(token), device=device, ended_at__isnull=True
    ).update(ended_at=now or timezone.now())
