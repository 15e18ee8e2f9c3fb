"""The journal in the admin: everything read-only. Money changes only through services
(corrections are reversing transactions, requested and approved as ``StaffRequest``s), so no
admin form can write a balance. Every screen is scoped to the staff member's facilities."""

from . import archive, deposits, journal, requests, runs  # noqa: F401 (each registers its screens)
