"""Demo data: a facility whose inmates have real money in the journal, for trying the system
out and for loading it with a realistic number of rows (``manage.py seed_demo``).

Everything is seeded idempotently and deterministically from one seed: inmate numbers, PINs,
names and the money plan follow from the seed and the inmate's index, so a second run finds
what the first made and creates nothing, and can still say every inmate's PIN.

Inmates and their money are written in bulk, a batch of inmates per database transaction:
the rows ``intake_inmate`` + ``open_inmate_accounts`` + ``reserve_deposit`` +
``credit_deposit`` would write, computed in Python and inserted with
PostgreSQL's COPY (``executemany`` on SQLite), their ids drawn from the tables' own sequences
first so the rows can refer to each other: the inmate rows here, the money through the
ledger's bulk path (``ledger.bulk``). Calling the services one inmate at a time costs about a
millisecond a call, minutes for a hundred thousand inmates. So the bulk path guards the same
invariants the services do, by construction: each transaction's entries sum to zero (1);
each cached balance is the sum of its entries, written in the same database transaction (2);
no plan takes spendable money over the balance cap (3) or a month's credited deposits over the
monthly cap (4); every credited deposit has its journal transaction and its period counts it
(8). ``ledger.reconciliation.run_checks()`` comes back empty after a seed, and the database's
CHECKs and triggers refuse anything else at commit.

The demo's purchases are real kiosk orders, placed afterwards through the catalog's services
(``catalog.demo.place_demo_orders``) for the first inmates of each facility, so the sales
report (orders) and the dashboard's net sales (the journal) agree on the seeded demo.

The package: ``plan`` (names, secrets and each inmate's money, computed), ``bulk`` (writing
the inmates, and their money through ``ledger.bulk``), ``site`` (the facilities, people and
batches). Callers import this package.
"""

from .plan import (
    BATCH_SIZE,
    DEPOSIT_AMOUNTS_FEN,
    DEPOSITOR_USERNAME,
    FACILITY_CODE,
    FACILITY_NAME,
    FACILITY_POLICY,
    GIVEN_NAME_CHARACTERS,
    HOUSING_UNIT_NAMES,
    INMATE_NUMBER_WIDTH,
    KIOSK_NAME,
    PARALLEL_BATCHES,
    PIN_POOL_SIZE,
    PROVIDER,
    STAFF_USERNAME,
    SURNAMES,
    DemoSecrets,
    DemoSeedMismatch,
    InmatePlan,
    PlannedDeposit,
    default_seed,
    inmate_number,
    pin_slot,
    plan_inmate,
)
from .site import (
    DEMO_ROLES,
    DemoSite,
    facility_code_and_name,
    iter_inmate_credentials,
    seed_demo,
)

__all__ = [
    "BATCH_SIZE",
    "DEMO_ROLES",
    "DEPOSITOR_USERNAME",
    "DEPOSIT_AMOUNTS_FEN",
    "DemoSecrets",
    "DemoSeedMismatch",
    "DemoSite",
    "FACILITY_CODE",
    "FACILITY_NAME",
    "FACILITY_POLICY",
    "GIVEN_NAME_CHARACTERS",
    "HOUSING_UNIT_NAMES",
    "INMATE_NUMBER_WIDTH",
    "InmatePlan",
    "KIOSK_NAME",
    "PARALLEL_BATCHES",
    "PIN_POOL_SIZE",
    "PROVIDER",
    "PlannedDeposit",
    "STAFF_USERNAME",
    "SURNAMES",
    "default_seed",
    "facility_code_and_name",
    "inmate_number",
    "iter_inmate_credentials",
    "pin_slot",
    "plan_inmate",
    "seed_demo",
]
