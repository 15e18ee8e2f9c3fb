"""Roles and permissions named in the reader's language.

Django stores a permission's name once, in English, when ``migrate`` creates it ("Can add
inmate", from ``Meta.default_permissions``), and a role's group by its stable English name
(``accounts.roles``); both are shown wherever a group or a permission is a choice or a title
(the person and role pages, their filters and widgets). ``install`` makes ``str()`` of both
read in the active language: a role's own label, and a permission named from its action and
the model's translated verbose name (a custom permission by its name's translation). The
sign-in logs of django-axes, whose records name themselves in English, are named here too."""

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import Group, Permission
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext, gettext_noop

from . import roles

_DEFAULT_ACTIONS = {
    "add": gettext_noop("Can add %(name)s"),
    "change": gettext_noop("Can change %(name)s"),
    "delete": gettext_noop("Can delete %(name)s"),
    "view": gettext_noop("Can view %(name)s"),
}
# The names of custom permissions stored without a translation of their own.
CUSTOM_PERMISSION_NAMES = (
    gettext_noop("Can approve another staff member's money request"),
    gettext_noop("Can approve another facility administrator's policy change"),
)


def group_label(group: Group) -> str:
    for role in roles.ROLES:
        if role.group_name == group.name:
            return str(role.label)
    return group.name


def permission_label(permission: Permission) -> str:
    """ "<app> | <model> | <what it allows>", as Django's own, in the reader's language."""
    content_type = permission.content_type
    model = content_type.model_class()
    action, _, model_name = permission.codename.partition("_")
    if model is not None and action in _DEFAULT_ACTIONS and model_name == model._meta.model_name:
        name = gettext(_DEFAULT_ACTIONS[action]) % {"name": model._meta.verbose_name}
    else:
        name = gettext(permission.name)
    return f"{content_type} | {name}"


_FAILED_AND_LOCKED_OUT = gettext_noop(
    "Failed sign-in of %(username)s at %(time)s from %(address)s, locked out"
)


def _instant(value) -> str:
    return date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else ""


def access_attempt_label(attempt: AccessAttempt) -> str:
    return gettext("Attempted sign-in at %(time)s") % {"time": _instant(attempt.attempt_time)}


def access_failure_label(failure: AccessFailureLog) -> str:
    values = {
        "username": failure.username or "",
        "time": _instant(failure.attempt_time),
        "address": failure.ip_address or "",
    }
    if failure.locked_out:
        return gettext(
            "Failed sign-in of %(username)s at %(time)s from %(address)s, locked out"
        ) % (values)
    return gettext("Failed sign-in of %(username)s at %(time)s from %(address)s") % values


def access_log_label(log: AccessLog) -> str:
    return gettext("Sign-in of %(username)s at %(time)s") % {
        "username": log.username or "",
        "time": _instant(log.attempt_time),
    }


def install() -> None:
    Group.__str__ = group_label
    Permission.__str__ = permission_label
    AccessAttempt.__str__ = access_attempt_label
    AccessFailureLog.__str__ = access_failure_label
    AccessLog.__str__ = access_log_label
