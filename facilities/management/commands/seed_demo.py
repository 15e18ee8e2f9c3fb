"""``manage.py seed_demo``: a demo facility with inmates who have money, and every credential
needed to try it, written to a JSON file. The seeding itself is ``facilities.demo``."""

import contextlib
import json
import os
import sys
import tempfile
from argparse import RawDescriptionHelpFormatter
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from django.db import connection
from django.utils import timezone
from tqdm import tqdm

from facilities import demo
from family import demo as family_demo
from monitoring import demo as monitoring_demo

HELP = f"""\
Seed a demo facility with inmates who have money, and write every credential to a file.

Creates the facility {demo.FACILITY_CODE!r} (Asia/Shanghai, CNY, the default caps, a 1% deposit
fee), its housing units, N inmates with PINs and real money in the journal (credited deposits
this month, some purchases), a kiosk device, the staff superuser {demo.STAFF_USERNAME!r} and the
family depositor {demo.DEPOSITOR_USERNAME!r}, and writes their credentials as JSON.

Staff: each demo facility gets one staff member per role (facility administrator, two trust
officers so one can approve what the other asks, commissary clerk, auditor), assigned to it
and named <facility code>_<role>. --facilities N makes N facilities ({demo.FACILITY_CODE!r},
{demo.FACILITY_CODE!r}2, ...), each with --inmates inmates; the file's top-level keys are the
first facility's, and "facilities" lists each with its staff, kiosk and inmates.

Idempotent: a second run with the same seed creates nothing and rewrites the same file; a run
with a larger N adds the missing inmates. Inmates, PINs, passwords and the money plan follow
from --seed (by default one derived from this installation's SECRET_KEY). A run with another
seed over existing demo inmates is refused: their PINs could not be recomputed.

Kiosk key: a key is shown only once and stored hashed, so it cannot be read back. A re-run
keeps the demo kiosk whose key is in the existing credentials file; if that file is missing,
or its key matches no active kiosk of the demo facility, a new kiosk device is issued and the
old one is left as it is. Existing staff and family users are never changed; if a password is
no longer the seeded one, the file records null for it.

Demo-only shortcut: hashing a PIN costs about 0.3 s, so the demo inmates share a pool of a few
distinct PINs (PIN_POOL_SIZE = {demo.PIN_POOL_SIZE}), hashed once and handed out round-robin.
Never do this with real inmates.

Inmates and money are written in bulk (COPY on PostgreSQL), BATCH_SIZE = {demo.BATCH_SIZE}
inmates per database transaction, and leave every reconciliation check clean.
"""


class _HelpFormatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    """Django's argument order, with the description's paragraphs kept as written."""


class Command(BaseCommand):
    help = HELP

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument(
            "--inmates", type=int, default=50, help="How many demo inmates (default 50)."
        )
        parser.add_argument(
            "--facilities",
            type=int,
            default=1,
            help="How many demo facilities, each with --inmates inmates and one staff member "
            "per role (default 1).",
        )
        parser.add_argument(
            "--seed", help="Seed for PINs, passwords and money (default: per installation)."
        )
        parser.add_argument(
            "--credentials-out",
            type=Path,
            default=settings.DATA_DIR / "demo-credentials.json",
            help="Where to write the credentials JSON (default: the data directory's "
            "demo-credentials.json).",
        )

    def handle(self, *args, inmates, facilities, seed, credentials_out, **options):
        if inmates < 0:
            raise CommandError("--inmates cannot be negative.")
        if facilities < 1:
            raise CommandError("--facilities must be at least 1.")
        if connection.vendor not in ("postgresql", "sqlite"):
            raise CommandError(
                f"seed_demo writes in bulk for PostgreSQL and SQLite only, not {connection.vendor}."
            )
        known_keys = _kiosk_keys_in(credentials_out)
        sites = []
        with tqdm(
            total=inmates * facilities,
            unit="inmate",
            desc="Seeding demo inmates",
            disable=None if options["verbosity"] else True,  # off when not on a terminal
            file=sys.stderr,
        ) as progress:
            for position in range(1, facilities + 1):
                code, _ = demo.facility_code_and_name(position)
                try:
                    sites.append(
                        demo.seed_demo(
                            inmate_count=inmates,
                            seed=seed or demo.default_seed(),
                            known_kiosk_key=known_keys.get(code),
                            on_progress=progress.update,
                            position=position,
                        )
                    )
                except demo.DemoSeedMismatch as mismatch:
                    raise CommandError(str(mismatch)) from None
        family = family_demo.link_demo_depositor(
            username=demo.DEPOSITOR_USERNAME,
            facility=sites[0].facility,
            provider=demo.PROVIDER,
            now=timezone.now(),
        )
        monitoring = monitoring_demo.seed_monitoring(
            facility=sites[0].facility,
            staff=get_user_model().objects.get(username=demo.STAFF_USERNAME),
            provider=demo.PROVIDER,
            now=timezone.now(),
        )
        _write_credentials(credentials_out, sites, family=family, monitoring=monitoring)
        if options["verbosity"]:
            for site in sites:
                self._report(site, credentials_out)

    def _report(self, site, credentials_out):
        def shown(password):
            return password if password is not None else "(unchanged, not the seeded one)"

        kiosk = "issued" if site.is_kiosk_new else "kept"
        self.stdout.write(
            f"Demo facility {site.facility.code!r}: {site.inmate_count} inmates "
            f"({site.inmates_created} created now).\n"
            f"Admin: /admin/  staff: {demo.STAFF_USERNAME} / {shown(site.staff_password)}\n"
            f"Family depositor: {demo.DEPOSITOR_USERNAME} / {shown(site.depositor_password)}\n"
            f"Kiosk {site.kiosk.name!r} ({kiosk}): {site.kiosk_key}\n"
            f"Every credential, inmates' PINs included: {credentials_out}"
        )


def _kiosk_keys_in(credentials_file: Path) -> dict[str, str]:
    """The kiosk keys a previous run wrote, by facility code, if the file is readable."""
    try:
        credentials = json.loads(credentials_file.read_text())
    except (OSError, ValueError):
        return {}
    keys = {}
    with contextlib.suppress(KeyError, TypeError):
        keys[demo.FACILITY_CODE] = credentials["kiosk"]["key"]
    for entry in credentials.get("facilities", []) if isinstance(credentials, dict) else []:
        try:
            keys[entry["code"]] = entry["kiosk"]["key"]
        except (KeyError, TypeError):
            continue
    return {code: key for code, key in keys.items() if isinstance(key, str)}


def _write_inmates(out, site, indent: str) -> None:
    out.write("[")
    for position, inmate in enumerate(demo.iter_inmate_credentials(site)):
        out.write(("," if position else "") + f"\n{indent}  ")
        out.write(json.dumps(inmate, ensure_ascii=False))
    out.write(f"\n{indent}]")


def _write_credentials(
    path: Path, sites, *, family: dict | None = None, monitoring: dict | None = None
) -> None:
    """Stream the credentials JSON (one inmate at a time: constant memory however many
    inmates), readable by the owner only, replacing the old file only once complete. The
    top-level keys are the first facility's; ``facilities`` lists every facility with its
    staff by role, kiosk and inmates."""
    site = sites[0]
    head = {
        "admin_url": "/admin/",
        "staff": {"username": demo.STAFF_USERNAME, "password": site.staff_password},
        "depositor": {
            "username": demo.DEPOSITOR_USERNAME,
            "password": site.depositor_password,
            **(family or {}),
        },
        "kiosk": {"name": site.kiosk.name, "key": site.kiosk_key},
        "monitoring": monitoring or {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(json.dumps(head, ensure_ascii=False, indent=2)[:-2])
            out.write(',\n  "inmates": ')
            _write_inmates(out, site, "  ")
            out.write(',\n  "facilities": [')
            for position, each in enumerate(sites):
                entry = {
                    "code": each.facility.code,
                    "name": each.facility.name,
                    "staff": each.role_staff,
                    "kiosk": {"name": each.kiosk.name, "key": each.kiosk_key},
                }
                out.write(("," if position else "") + "\n    ")
                out.write(json.dumps(entry, ensure_ascii=False)[:-1] + ', "inmates": ')
                _write_inmates(out, each, "    ")
                out.write("}")
            out.write("\n  ]\n}\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
