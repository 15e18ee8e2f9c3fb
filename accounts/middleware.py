"""The facility on a staff member's log lines: a staff member assigned to exactly one facility
works for that facility, so every line of their requests, and of the Celery tasks those requests
queue, carries its ``facility_id`` (commissary.logs). A superuser, or someone assigned to
several facilities, is known by ``user_id`` alone: which facility a request concerned is then
for its own lines to say."""

from commissary import logs

from .admin_scope import user_facility_ids


class StaffFacilityLogContextMiddleware:
    """After ``commissary.logs.LogContextMiddleware``, which starts the context and binds the
    user. The facilities are read once per request and kept for the admin's scope, which reads
    them again (``user_facility_ids``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_staff:
            facility_ids = user_facility_ids(request)
            if facility_ids is not None and len(facility_ids) == 1:
                (facility_id,) = facility_ids
                logs.bind(facility_id=facility_id)
        return self.get_response(request)
