"""Bulk admission of an inmate roster from CSV (django-import-export, in the admin).

Columns: ``facility`` (its code), ``inmate_number``, ``surname``, ``given_name`` (optional),
``housing_unit`` (a unit's name at that facility, optional). The preview (a dry run) lists every
row's errors before anything is written: a facility the staff member is not assigned to, an
inmate number already in use there or twice in the file, an unknown housing unit, a missing
surname. Only new inmates are admitted; nothing existing is changed.

Fast enough for 10,000 rows in seconds: facilities, housing units and the inmate numbers in use
are read once before the rows, each row is checked against those in memory, and the inmates
and their ledger accounts are written in batches (``facilities.services.admit_roster``).
PINs are not imported: hashing one costs ~0.3 s. Staff set each PIN on the inmate's page.
"""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from import_export import fields, resources, widgets

from accounts.selectors import facility_ids_for

from . import services
from .models import Facility, HousingUnit, Inmate, canonical_inmate_number


class _FacilityCodeWidget(widgets.Widget):
    def __init__(self, resource):
        super().__init__()
        self.resource = resource

    def clean(self, value, row=None, **kwargs):
        code = (value or "").strip()
        facility = self.resource.facilities_by_code.get(code)
        if facility is None:
            raise ValueError(
                _("No facility with the code “%(code)s” that you work at.") % {"code": code}
            )
        return facility

    def render(self, value, obj=None, **kwargs):
        return value.code if value else ""


class InmateRosterResource(resources.ModelResource):
    facility = fields.Field(attribute="facility", column_name="facility")
    housing_unit = fields.Field(attribute="housing_unit_name", column_name="housing_unit")

    class Meta:
        model = Inmate
        fields = ("facility", "inmate_number", "surname", "given_name", "housing_unit")
        import_id_fields = ("inmate_number",)
        use_bulk = True
        batch_size = 2_000
        skip_diff = True
        clean_model_instances = False

    def __init__(self, user=None, **kwargs):
        super().__init__(**kwargs)
        self.user = user
        self.fields["facility"].widget = _FacilityCodeWidget(self)
        self.facilities_by_code: dict[str, Facility] = {}
        self.units: dict[tuple[int, str], HousingUnit] = {}
        self.numbers_in_use: set[tuple[int, str]] = set()

    def before_import(self, dataset, **kwargs):
        """Read once what every row is checked against: the staff member's facilities, their
        housing units and the inmate numbers in use there."""
        facilities = Facility.objects.all()
        allowed = facility_ids_for(self.user) if self.user is not None else set()
        if allowed is not None:
            facilities = facilities.filter(pk__in=allowed)
        self.facilities_by_code = {facility.code: facility for facility in facilities}
        ids = [facility.pk for facility in self.facilities_by_code.values()]
        self.units = {
            (unit.facility_id, unit.name): unit
            for unit in HousingUnit.objects.filter(facility_id__in=ids)
        }
        self.numbers_in_use = set(
            Inmate.objects.filter(facility_id__in=ids).values_list("facility_id", "inmate_number")
        )

    def get_instance(self, instance_loader, row):
        return None  # a roster only admits: every row is a new inmate

    def import_instance(self, instance, row, **kwargs):
        errors = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as invalid:
            errors = invalid.update_error_dict(errors)
        instance.inmate_number = canonical_inmate_number(instance.inmate_number or "")
        instance.surname = (instance.surname or "").strip()
        instance.given_name = (instance.given_name or "").strip()
        facility_id = instance.facility_id if "facility" not in errors else None
        if not instance.inmate_number:
            errors.setdefault("inmate_number", []).append(_("An inmate number is required."))
        elif facility_id is not None:
            number = (facility_id, instance.inmate_number)
            if number in self.numbers_in_use:
                errors.setdefault("inmate_number", []).append(
                    _(
                        "Inmate number %(number)s is already in use at this facility, or twice "
                        "in this file."
                    )
                    % {"number": instance.inmate_number}
                )
            self.numbers_in_use.add(number)
        if not instance.surname:
            errors.setdefault("surname", []).append(_("A surname is required."))
        unit_name = (getattr(instance, "housing_unit_name", "") or "").strip()
        if unit_name and facility_id is not None:
            unit = self.units.get((facility_id, unit_name))
            if unit is None:
                errors.setdefault("housing_unit", []).append(
                    _("No housing unit “%(name)s” at this facility.") % {"name": unit_name}
                )
            instance.housing_unit = unit
        if errors:
            raise ValidationError(errors)

    def bulk_create(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        if self.create_instances and (using_transactions or not dry_run):
            try:
                services.admit_roster(inmates=list(self.create_instances))
            except Exception as refused:  # noqa: BLE001 (reported on the import page)
                self.handle_import_error(result, refused, raise_errors)
            finally:
                self.create_instances.clear()
