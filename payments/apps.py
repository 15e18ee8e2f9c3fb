from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self):
        from . import checks  # noqa: F401, PLC0415 - registers the checks once the models load
