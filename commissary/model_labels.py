"""Translated labels for the project's own models in the admin (zh-hans and English).

Most fields of the project's models carry Django's default label (the field name with spaces),
an English help text
and their choices plain English labels. Rather than migrate every model to add
``verbose_name=_(...)`` (a migration per app, for labels only), the labels of the project's
apps are made lazily translatable once the models are loaded (``translate_model_labels``,
called from ``accounts.apps``). The English text stays exactly what it was, so migrations see no
change (``makemigrations`` runs without translations), and each label is looked up in the
project's catalogue (``locale/``) when a page is drawn in the reader's language.

``commissary/model_label_catalog.py`` lists the labels with ``gettext_noop`` so that
``makemessages`` finds them; ``tests/admin/test_language.py`` checks that every label made
translatable here (``WRAPPED``) has a Chinese translation.
"""

from django.apps import apps
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy

PROJECT_APPS = ("accounts", "facilities", "ledger", "catalog", "payments", "kiosk")


WRAPPED: set[str] = set()  # the English labels made translatable here


def _lazy(text):
    if isinstance(text, Promise) or not text:
        return text  # already translatable (Django's own user fields, say)
    WRAPPED.add(str(text))
    return gettext_lazy(str(text))


def _project_models():
    for label in PROJECT_APPS:
        if apps.is_installed(label):
            yield from apps.get_app_config(label).get_models()


def translate_model_labels() -> None:
    for label in PROJECT_APPS:
        if apps.is_installed(label):
            config = apps.get_app_config(label)
            config.verbose_name = _lazy(config.verbose_name)
    for model in _project_models():
        opts = model._meta
        if "verbose_name_plural" not in opts.original_attrs:
            # Django's default plural is the singular plus "s", formatted lazily from the
            # singular (the Chinese singular plus "s" for a translated one); translate the
            # English plural as a whole instead.
            with translation.override(None):
                english = str(opts.verbose_name)
            opts.verbose_name_plural = _lazy(f"{english}s")
        else:
            opts.verbose_name_plural = _lazy(opts.verbose_name_plural)
        opts.verbose_name = _lazy(opts.verbose_name)
        for field in opts.get_fields():
            if not hasattr(field, "verbose_name") or field.auto_created:
                continue
            field.verbose_name = _lazy(field.verbose_name)
            if getattr(field, "help_text", None):  # the admin shows it under the field
                field.help_text = _lazy(field.help_text)
            if getattr(field, "choices", None):
                field.choices = [(value, _lazy(text)) for value, text in field.choices]
