"""The site's Content-Security-Policy middleware answers exactly what django-csp's own does,
whatever the settings, the view's decorators or a template's nonce."""

import pytest
from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.exceptions import CSPNonceError
from csp.middleware import CSPMiddleware
from django.http import HttpResponse
from django.test import RequestFactory

from commissary.middleware import ContentSecurityPolicyMiddleware

REPORT_ONLY = {
    "EXCLUDE_URL_PREFIXES": ["/excluded/"],
    "DIRECTIVES": {"default-src": ["'self'"], "report-uri": "/csp-report/"},
}


def answer(middleware_class, *, path="/", status=200, use_nonce=False, **response_attributes):
    """The headers ``middleware_class`` answers for one request, and its request."""
    request = RequestFactory().get(path)
    middleware = middleware_class(lambda request: None)
    middleware.process_request(request)
    if use_nonce:
        str(request.csp_nonce)
    response = HttpResponse(status=status)
    for name, value in response_attributes.items():
        if name == "header":
            response[HEADER] = value
        else:
            setattr(response, name, value)
    middleware.process_response(request, response)
    headers = {name: response.get(name) for name in (HEADER, HEADER_REPORT_ONLY)}
    return headers, request


CASES = {
    "plain": {},
    "replaced by a decorator": {"_csp_replace": {"script-src": ["'none'"]}},
    "updated by a decorator": {"_csp_update": {"img-src": ["https://example.org"]}},
    "report-only updated": {"_csp_update_ro": {"img-src": ["https://example.org"]}},
    "exempt": {"_csp_exempt": True},
    "report-only exempt": {"_csp_exempt_ro": True},
    "header already set": {"header": "default-src 'none'"},
    "a template used a nonce": {"use_nonce": True},
    "not found": {"status": 404},
    "excluded path": {"path": "/excluded/page"},
}


@pytest.mark.parametrize("report_only", [False, True], ids=["enforced", "with report-only"])
@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize("case", CASES)
def test_headers_are_django_csps_own(settings, case, report_only, debug):
    settings.DEBUG = debug
    if report_only:
        settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = REPORT_ONLY
    ours, _request = answer(ContentSecurityPolicyMiddleware, **CASES[case])
    theirs, _request = answer(CSPMiddleware, **CASES[case])
    if "use_nonce" in CASES[case]:  # a new nonce each request: compare without it
        ours = {name: value and value.split("'nonce-")[0] for name, value in ours.items()}
        theirs = {name: value and value.split("'nonce-")[0] for name, value in theirs.items()}
    assert ours == theirs


def test_a_changed_setting_changes_the_policy(settings):
    before, _request = answer(ContentSecurityPolicyMiddleware)
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    after, _request = answer(ContentSecurityPolicyMiddleware)
    assert "default-src 'self'" in before[HEADER]
    assert after[HEADER] == "default-src 'none'"
    assert after == answer(CSPMiddleware)[0]


def test_a_nonce_asked_for_after_the_header_is_written_is_refused():
    _headers, request = answer(ContentSecurityPolicyMiddleware)
    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)
