"""The whole demo: its facilities, staff by role, family and kiosk, and the batches of
inmates, seeded idempotently from one seed."""

import datetime as dt
import functools
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password, make_password
from django.db import connection, models, transaction
from django.utils import timezone

from accounts import roles
from accounts.models import FacilityAssignment
from catalog import demo as catalog_demo
from ledger.bulk import SystemAccounts

from .. import services as facility_services
from ..models import Facility, HousingUnit, Inmate, KioskDevice, hash_device_key
from .bulk import _write_batch, system_accounts
from .plan import (
    _INMATE_NUMBER,
    BATCH_SIZE,
    DEPOSITOR_USERNAME,
    FACILITY_CODE,
    FACILITY_NAME,
    FACILITY_POLICY,
    HOUSING_UNIT_NAMES,
    KIOSK_NAME,
    PARALLEL_BATCHES,
    STAFF_USERNAME,
    DemoSecrets,
    DemoSeedMismatch,
    inmate_number,
    pin_slot,
    plan_inmate,
)

# --- the whole demo ------------------------------------------------------------------------


@dataclass
class DemoSite:
    """What a seed made or found. A password is None when the user already existed with
    another password (it is left alone)."""

    facility: Facility
    inmate_count: int
    inmates_created: int
    staff_password: str | None = field(repr=False)
    depositor_password: str | None = field(repr=False)
    kiosk: KioskDevice
    kiosk_key: str = field(repr=False)
    is_kiosk_new: bool
    pin_pool: list[str] = field(repr=False)
    # role key ("facility_admin", "trust_officer", ...) -> {"username", "password"}
    role_staff: dict[str, dict] = field(default_factory=dict, repr=False)


# One staff member per role at each demo facility, two trust officers so that maker-checker
# (one asks, the other approves) can be tried, and two facility administrators so that a
# policy change (one asks, the other approves) can be.
DEMO_ROLES = (
    ("facility_admin", "FACILITY_ADMIN"),
    ("facility_admin_2", "FACILITY_ADMIN"),
    ("trust_officer", "TRUST_OFFICER"),
    ("trust_officer_2", "TRUST_OFFICER"),
    ("clerk", "COMMISSARY_CLERK"),
    ("auditor", "AUDITOR"),
    ("security_officer", "SECURITY_OFFICER"),
)


def facility_code_and_name(position: int) -> tuple[str, str]:
    """The code and name of demo facility ``position`` (1-based): the first is the demo
    facility every single-facility run makes."""
    if position == 1:
        return FACILITY_CODE, FACILITY_NAME
    return f"{FACILITY_CODE}{position}", f"Demo Prison {position} 示范监狱{position}号"


def _ensure_role_staff(facility: Facility, demo_secrets: DemoSecrets) -> dict[str, dict]:
    """The facility's demo staff, one per role (two trust officers), assigned to it."""
    user_model = get_user_model()
    staff = {}
    for key, role_name in DEMO_ROLES:
        username = f"{facility.code}_{key}"
        password = _ensure_user(
            username, demo_secrets.password(username), is_superuser=False, is_staff=True
        )
        user = user_model.objects.get(username=username)
        roles.assign_role(user, getattr(roles, role_name))
        FacilityAssignment.objects.get_or_create(user=user, facility=facility)
        staff[key] = {"username": username, "password": password}
    return staff


def seed_demo(
    *,
    inmate_count: int,
    seed: str,
    known_kiosk_key: str | None = None,
    batch_size: int = BATCH_SIZE,
    now: dt.datetime | None = None,
    on_progress: Callable[[int], None] = lambda inmates: None,
    position: int = 1,
) -> DemoSite:
    """Make (or find) the demo facility, its housing units, staff and family users, a kiosk
    and ``inmate_count`` inmates with money. ``known_kiosk_key`` is a key issued earlier
    (from the last credentials file): its device is kept; without it a new device is issued,
    because a stored key cannot be read back. ``on_progress`` hears how many inmates each
    batch covered. ``position`` picks the demo facility (1 is the first; see
    ``facility_code_and_name``); each has one staff member per role. Raises DemoSeedMismatch
    when demo inmates exist from another seed."""
    now = now or timezone.now()
    demo_secrets = DemoSecrets(seed)
    pin_pool = demo_secrets.pin_pool()

    code, name = facility_code_and_name(position)
    facility = Facility.objects.filter(code=code).first()
    if facility is None:
        facility = facility_services.create_facility(code=code, name=name, **FACILITY_POLICY)
    _ensure_same_seed(facility, demo_secrets=demo_secrets, pin_pool=pin_pool)
    housing_unit_ids = [
        HousingUnit.objects.get_or_create(facility=facility, name=name)[0].pk
        for name in HOUSING_UNIT_NAMES
    ]
    staff_password = _ensure_user(
        STAFF_USERNAME, demo_secrets.password(STAFF_USERNAME), is_superuser=True
    )
    depositor_password = _ensure_user(
        DEPOSITOR_USERNAME, demo_secrets.password(DEPOSITOR_USERNAME), is_superuser=False
    )
    # A superuser sees every facility but requests and approves money only where assigned.
    FacilityAssignment.objects.get_or_create(
        user=get_user_model().objects.get(username=STAFF_USERNAME), facility=facility
    )
    role_staff = _ensure_role_staff(facility, demo_secrets)
    kiosk, kiosk_key, is_kiosk_new = _ensure_kiosk(facility, known_key=known_kiosk_key)

    inmates_created = 0
    if _demo_inmates(facility, inmate_count).count() < inmate_count:
        seed_batch = functools.partial(
            _seed_batch,
            facility_id=facility.pk,
            demo_secrets=demo_secrets,
            housing_unit_ids=housing_unit_ids,
            pin_hashes=_hash_pins(pin_pool),
            system=system_accounts(facility),
            now=now,
        )
        batches = [
            (first, min(first + batch_size - 1, inmate_count))
            for first in range(1, inmate_count + 1, batch_size)
        ]
        for (first, last), created in _run_batches(seed_batch, batches):
            inmates_created += created
            on_progress(last - first + 1)
    else:
        on_progress(inmate_count)
    # The commissary: products in stock here, grades with spending limits for every inmate.
    catalog_demo.seed_demo_catalog(facility=facility, now=now)
    catalog_demo.grade_demo_inmates(facility=facility)
    clerk_id = get_user_model().objects.get(username=role_staff["clerk"]["username"]).pk
    # Their purchases: real kiosk orders, through the catalog's services.
    catalog_demo.place_demo_orders(
        facility=facility, device_id=kiosk.pk, clerk_id=clerk_id, now=now
    )
    # Prices with a history and one open dispute, filed by the facility's commissary clerk.
    catalog_demo.seed_demo_fairness(
        facility=facility, staff_id=clerk_id, device_id=kiosk.pk, now=now
    )
    return DemoSite(
        facility=facility,
        inmate_count=inmate_count,
        inmates_created=inmates_created,
        staff_password=staff_password,
        depositor_password=depositor_password,
        kiosk=kiosk,
        kiosk_key=kiosk_key,
        is_kiosk_new=is_kiosk_new,
        pin_pool=pin_pool,
        role_staff=role_staff,
    )


def _seed_batch(
    first: int,
    last: int,
    *,
    facility_id: int,
    demo_secrets: DemoSecrets,
    housing_unit_ids: Sequence[int],
    pin_hashes: Sequence[str],
    system: SystemAccounts,
    now: dt.datetime,
) -> int:
    """Seed the demo inmates numbered ``first``..``last`` that do not exist yet, in one
    database transaction; return how many were created."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # A share lock: batches run side by side, but the caps cannot change under them
            # (update_facility_caps locks the row for update) until they commit.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT id FROM facilities_facility WHERE id = %s FOR SHARE", [facility_id]
                )
        facility = Facility.objects.get(pk=facility_id)
        existing = set(
            Inmate.objects.filter(
                facility=facility, inmate_number__range=(inmate_number(first), inmate_number(last))
            ).values_list("inmate_number", flat=True)
        )
        plans = [
            plan_inmate(index, demo_secrets=demo_secrets, facility=facility, now=now)
            for index in range(first, last + 1)
            if inmate_number(index) not in existing
        ]
        if plans:
            _write_batch(
                plans,
                facility=facility,
                housing_unit_ids=housing_unit_ids,
                pin_hashes=pin_hashes,
                system=system,
                now=now,
            )
    return len(plans)


def _run_batches(
    seed_batch: Callable[[int, int], int], batches: Sequence[tuple[int, int]]
) -> Iterator[tuple[tuple[int, int], int]]:
    """Run the batches, yielding each with what it created as it finishes. On PostgreSQL they
    run on PARALLEL_BATCHES connections at once: most of a batch's cost is the database's
    own work (index inserts, foreign-key and balance triggers at commit), which one
    connection keeps on one core. In a caller's open transaction (a test's, say) other
    connections could not see its rows, and SQLite has a single writer: one at a time there."""
    workers = min(PARALLEL_BATCHES, len(batches))
    if connection.vendor != "postgresql" or connection.in_atomic_block or workers < 2:
        for first, last in batches:
            yield (first, last), seed_batch(first, last)
        return

    def in_own_connection(first: int, last: int) -> int:
        try:
            return seed_batch(first, last)
        finally:
            connection.close()  # this worker thread's own connection

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = {pool.submit(in_own_connection, *batch): batch for batch in batches}
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        pool.shutdown(cancel_futures=True)


def iter_inmate_credentials(site: DemoSite) -> Iterator[dict]:
    """Number, PIN and card token (`card`, as the kiosk API names it in `POST sessions`) of
    the demo inmates 1..N, streamed from the database."""
    rows = (
        _demo_inmates(site.facility, site.inmate_count)
        .order_by("inmate_number")
        .values_list("inmate_number", "card_token", "grade__name")
        .iterator(chunk_size=10_000)
    )
    for number, card_token, grade in rows:
        match = _INMATE_NUMBER.fullmatch(number)
        if match is None:
            continue
        index = int(match.group(1))
        yield {
            "inmate_number": number,
            "pin": site.pin_pool[pin_slot(index)],
            "card": card_token,
            "grade": grade,
        }


def _demo_inmates(facility: Facility, inmate_count: int) -> models.QuerySet:
    return Inmate.objects.filter(
        facility=facility, inmate_number__range=(inmate_number(1), inmate_number(inmate_count))
    )


def _ensure_same_seed(
    facility: Facility, *, demo_secrets: DemoSecrets, pin_pool: Sequence[str]
) -> None:
    """Every seed creates demo inmate 1 first: if it exists, it must have this seed's PIN."""
    pin_hash = (
        Inmate.objects.filter(facility=facility, inmate_number=inmate_number(1))
        .values_list("pin_hash", flat=True)
        .first()
    )
    if pin_hash is not None and not check_password(pin_pool[pin_slot(1)], pin_hash):
        raise DemoSeedMismatch(
            f"The demo inmates of {facility.code!r} were seeded from another seed (or inmate "
            f"{inmate_number(1)}'s PIN was changed); run again with that seed, or on a fresh "
            f"database."
        )


def _hash_pins(pins: Sequence[str]) -> list[str]:
    # PBKDF2 releases the GIL, so threads hash the pool on every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(make_password, pins))


def _ensure_user(
    username: str, password: str, *, is_superuser: bool, is_staff: bool = False
) -> str | None:
    """Create the user with ``password``; an existing user is left as it is, and its password
    is returned only if it is still the seeded one."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        email = f"{username}@demo.invalid"
        if is_superuser:
            user_model.objects.create_superuser(username=username, email=email, password=password)
        else:
            user_model.objects.create_user(
                username=username, email=email, password=password, is_staff=is_staff
            )
        return password
    return password if check_password(password, user.password) else None


def _ensure_kiosk(facility: Facility, *, known_key: str | None) -> tuple[KioskDevice, str, bool]:
    if known_key:
        device = KioskDevice.objects.filter(
            facility=facility, is_active=True, key_hash=hash_device_key(known_key)
        ).first()
        if device is not None:
            return device, known_key, False
    device, key = facility_services.register_kiosk_device(facility=facility, name=KIOSK_NAME)
    return device, key, True
