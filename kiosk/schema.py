"""Post-processing of the published OpenAPI schema so it says what the API enforces."""


def strict_request_bodies(result, generator, request, public):
    """Request bodies refuse fields they do not define (``kiosk.serializers.StrictSerializer``):
    say so with ``additionalProperties: false`` on every request component."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result


RESPONSE_HEADERS = {
    "401": {
        "WWW-Authenticate": {
            "required": True,
            "schema": {"type": "string"},
            "description": (
                '`Kiosk realm="kiosk"` when the device key is missing, wrong or revoked; '
                '`InmateSession realm="kiosk"` when the inmate\'s credentials or session are.'
            ),
        }
    },
    "423": {
        "Retry-After": {
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
            "description": "Seconds until the inmate's sign-in lock-out ends.",
        }
    },
    "429": {
        "Retry-After": {
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
            "description": "Seconds to wait before this kiosk tries again.",
        }
    },
}


def documented_response_headers(result, generator, request, public):
    """The headers that come with some answers: the challenge of a 401, the wait of a 423 or
    a 429."""
    for path in result.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                if status in RESPONSE_HEADERS:
                    response.setdefault("headers", {}).update(RESPONSE_HEADERS[status])
    return result
