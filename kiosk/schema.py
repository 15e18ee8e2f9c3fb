"""Post-processing of the published OpenAPI schema so it says what the API enforces."""


def strict_request_bodies(result, generator, request, public):
    """Request bodies refuse fields they do not define (``kiosk.serializers.StrictSerializer``):
    say so with ``additionalProperties: false`` on every request component."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result
