"""The kiosk API's interactive docs: Swagger UI from drf-spectacular-sidecar's static files,
its set-up script from a URL of its own, and its styles from a file, so the page runs under a
strict CSP (no inline script or style)."""

from drf_spectacular.views import SpectacularSwaggerSplitView


class KioskApiDocsView(SpectacularSwaggerSplitView):
    template_name = "kiosk/api_docs.html"
