"""Staff screens for facilities, housing units, inmates and kiosks. Intake is the inmate add
form; transfer and release are actions with a confirmation page that shows each inmate's money
and what will happen to it (a release paying out more than the facility's threshold waits for a
second trust officer as a money request). Each screen calls one service; none writes money
itself. Every screen is scoped to the staff member's facilities (``accounts.admin_scope``)."""

from . import facilities, grades, inmates, kiosks  # noqa: F401 (each registers its screens)
