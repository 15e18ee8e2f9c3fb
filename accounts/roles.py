"""Staff roles: global Django groups whose permissions follow from patterns, not lists.

A role names what it may do by app label and permission codename patterns, so a model that
lands later (the catalog, payments) is covered the moment its permissions exist: after every
``migrate`` the ``post_migrate`` handler sets each group's permissions to exactly what its
patterns match, adding new ones and taking away any granted by hand. Which facilities a staff
member sees is not a role's business: that is ``accounts.FacilityAssignment``.

Schedules (django-celery-beat) are global, so no role may change them: only superusers do.
"""

import re
from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Role:
    group_name: str  # stable: code looks groups up by it; shown translated through `label`
    label: str
    patterns: tuple[str, ...]  # "app_label.codename" regular expressions, matched whole

    def matches(self, app_label: str, codename: str) -> bool:
        return any(re.fullmatch(pattern, f"{app_label}.{codename}") for pattern in self.patterns)


_VIEW_EVERYTHING_IN_SCOPE = (
    r"(facilities|ledger|catalog|payments|reports)\.view_\w+",
    r"accounts\.view_(depositorlink|depositor\w*)",
)

FACILITY_ADMIN = Role(
    "Facility administrator",
    _("Facility administrator"),
    (
        *_VIEW_EVERYTHING_IN_SCOPE,
        # Inmates (intake, transfer, release), housing units and kiosks of their facilities.
        r"facilities\.(add|change)_(inmate|housingunit|kioskdevice)",
        r"facilities\.delete_housingunit",
        r"facilities\.change_facility",
        # A facility's money policy (threshold, fee, deposit limits) changes only when a second
        # facility administrator approves: they see the requests and approve each other's.
        r"ledger\.approve_policy",
        # The facility's grades with their spending limits (usual and festival-month) and its
        # festival months: commissary policy of the facility. A grade inmates hold cannot be
        # deleted (PROTECT); the admin says so and deletes nothing.
        r"facilities\.(add|change|delete)_(grade|festivalmonth)",
        # The commissary's disputes queue: decides them, and sees those escalated to them.
        r"catalog\.change_dispute",
        r"accounts\.(change|add)_depositorlink",
        r"auditlog\.view_logentry",
    ),
)
TRUST_OFFICER = Role(
    "Trust officer",
    _("Trust officer"),
    (
        *_VIEW_EVERYTHING_IN_SCOPE,
        r"ledger\.(add|change)_staffrequest",
        r"ledger\.approve_money",
        r"accounts\.(change|add)_depositorlink",
        r"payments\.change_\w+",
        # A provider call (a refund at Alipay or WeChat Pay) that keeps failing, tried now.
        r"payments\.retry_providercall",
    ),
)
COMMISSARY_CLERK = Role(
    "Commissary clerk",
    _("Commissary clerk"),
    (
        # Grades and festival months read-only: the limits a kiosk order is refused by.
        r"facilities\.view_(inmate|housingunit|kioskdevice|facility|grade|festivalmonth)",
        r"catalog\.(add|change|view)_\w+",
        r"catalog\.(fulfil|fulfill|cancel)_\w+",
    ),
)
AUDITOR = Role(
    "Auditor",
    _("Auditor"),
    (
        *_VIEW_EVERYTHING_IN_SCOPE,
        r"auditlog\.view_logentry",
    ),
)

SECURITY_OFFICER = Role(
    "Security officer",
    _("Security officer"),
    (
        # Monitoring rules, the deposits they hold, auto-accepted pairs and review deadlines of
        # their facilities; accepting or rejecting a held deposit.
        r"monitoring\.(add|change|view)_(rule|autoaccept)",
        r"monitoring\.(view|change)_(hold|facilitymonitoring)",
        r"monitoring\.view_ruleversion",
        r"monitoring\.decide_hold",
        r"ledger\.view_deposit",
        r"facilities\.view_(inmate|facility)",
        r"accounts\.view_depositorlink",
    ),
)

ROLES = (FACILITY_ADMIN, TRUST_OFFICER, COMMISSARY_CLERK, AUDITOR, SECURITY_OFFICER)


def sync_role_groups(**kwargs) -> None:
    """Create the role groups and set each one's permissions to what its patterns match.
    Connected to ``post_migrate`` (it runs after each app's permissions are created)."""
    permissions = list(Permission.objects.select_related("content_type"))
    with transaction.atomic():
        for role in ROLES:
            group, _ = Group.objects.get_or_create(name=role.group_name)
            group.permissions.set(
                [
                    permission
                    for permission in permissions
                    if role.matches(permission.content_type.app_label, permission.codename)
                ]
            )


def assign_role(user, role: Role) -> None:
    user.groups.add(Group.objects.get(name=role.group_name))
