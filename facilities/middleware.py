"""A staff member's pages in their facility's time (``StaffFacilityTimezoneMiddleware``)."""

from zoneinfo import ZoneInfo

from django.utils import timezone

from accounts.admin_scope import user_facility_ids

from .models import Facility


class StaffFacilityTimezoneMiddleware:
    """A staff member's pages in their facility's time: where every facility they are assigned
    to keeps one timezone, it is the request's current timezone, so the admin's dates and times
    read in it, its date hierarchies cut days at the facility's midnight, a date filter's
    "Today" and "This month" are the facility's, and a time typed into a form is read in it.
    A superuser, or someone assigned to facilities in different timezones, keeps the site's
    ``TIME_ZONE`` (each page about one facility's money takes that facility's dates itself:
    ``facilities.models.local_date``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = self._facility_timezone(request)
        if name is None:
            return self.get_response(request)
        with timezone.override(ZoneInfo(name)):
            return self.get_response(request)

    @staticmethod
    def _facility_timezone(request) -> str | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_staff:
            return None
        facility_ids = user_facility_ids(request)
        if not facility_ids:
            return None
        names = set(Facility.objects.filter(pk__in=facility_ids).values_list("timezone", flat=True))
        return names.pop() if len(names) == 1 else None
