"""The kiosk API's one error envelope: ``{"error": {"code", "message"}}`` with the status the
contract names. Every failure goes through here — domain errors from the services and DRF's own
(authentication, throttling, parse errors, 404, 405, 415) and a body over Django's upload limit
(413) — so a kiosk vendor handles one shape.
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.response import Response

from commissary import errors

# One place maps a domain code to its HTTP status (STYLE.md: errors).
STATUS_BY_CODE = {
    "validation_error": 400,
    "invalid_amount": 400,
    "not_authenticated": 401,
    "invalid_credentials": 401,
    "session_expired": 401,
    "permission_denied": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "not_acceptable": 406,
    "idempotency_conflict": 409,
    "request_too_large": 413,
    "unsupported_media_type": 415,
    "insufficient_funds": 422,
    "spending_limit_exceeded": 422,
    "out_of_stock": 422,
    "product_restricted": 422,
    "account_frozen": 422,
    "inmate_released": 422,
    "locked_out": 423,
    "throttled": 429,
}

ERROR_CODES = sorted(STATUS_BY_CODE)


def envelope(code: str, message) -> dict:
    return {"error": {"code": code, "message": str(message)}}


def error_response(code: str, message, *, status: int | None = None, headers=None) -> Response:
    return Response(
        envelope(code, message), status=status or STATUS_BY_CODE.get(code, 422), headers=headers
    )


def _first_message(detail) -> str:
    """The first human sentence in a DRF error detail (a string, list or dict of them), with
    the field it is about."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            message = _first_message(value)
            if field in ("non_field_errors", "detail"):
                return message
            return f"{field}: {message}"
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else _("The request is invalid.")
    return str(detail)


# A 401 always says how to authenticate (RFC 9110): the device key, or the inmate's session.
INMATE_CHALLENGE = 'InmateSession realm="kiosk"'


def exception_handler(exc, context):
    if isinstance(exc, errors.DomainError):
        headers = None
        if STATUS_BY_CODE.get(exc.code) == 401:
            headers = {"WWW-Authenticate": INMATE_CHALLENGE}
        retry_after = getattr(exc, "retry_after_seconds", None)
        if retry_after is not None:
            headers = {"Retry-After": str(retry_after)}
        return error_response(exc.code, exc.message, headers=headers)
    if isinstance(exc, RequestDataTooBig):
        # Django's own answer is an HTML 400 page; the API keeps its envelope.
        return error_response(
            "request_too_large",
            _("The request body is larger than %(limit)d bytes.")
            % {"limit": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
            status=413,
        )
    if isinstance(exc, Http404):
        return error_response("not_found", _("Not found."))
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 1)
        return error_response(
            "throttled",
            _("Too many requests from this kiosk; try again in %(seconds)d seconds.")
            % {"seconds": wait},
            status=429,
            headers={"Retry-After": str(wait)},
        )
    if isinstance(exc, exceptions.ValidationError | exceptions.ParseError):
        return error_response("validation_error", _first_message(exc.detail), status=400)
    if isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "not_authenticated"
        if code not in ("invalid_credentials", "session_expired"):
            code = "not_authenticated"
        auth_header = getattr(exc, "auth_header", None)
        return error_response(
            code,
            exc.detail,
            status=401,
            headers={"WWW-Authenticate": auth_header} if auth_header else None,
        )
    if isinstance(exc, exceptions.APIException):
        code = {
            404: "not_found",
            405: "method_not_allowed",
            406: "not_acceptable",
            415: "unsupported_media_type",
            403: "permission_denied",
        }.get(exc.status_code, "error")
        return error_response(code, _first_message(exc.detail), status=exc.status_code)
    return None
