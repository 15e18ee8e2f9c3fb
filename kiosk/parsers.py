"""The kiosk API's JSON parser: DRF's, with a body nested too deeply for Python's decoder (a
5,000-deep array raised RecursionError, a 500) refused as a parse error, 400
``validation_error``, like any other body that is not JSON the API can read."""

from django.utils.translation import gettext as _
from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_("The JSON body is nested too deeply.")) from None
