"""factory_boy factories. Facilities and inmates are made through their services, so every
test inmate has its ledger accounts exactly as intake opens them."""

import factory
from django.contrib.auth.models import Permission

from accounts.models import FacilityAssignment, User
from facilities import services as facility_services
from facilities.models import Facility, HousingUnit, Inmate


class FacilityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Facility

    code = factory.Sequence(lambda n: f"fac{n}")
    name = factory.Sequence(lambda n: f"Facility {n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return facility_services.create_facility(**kwargs)


class HousingUnitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HousingUnit

    facility = factory.SubFactory(FacilityFactory)
    name = factory.Sequence(lambda n: f"Unit {n}")


class InmateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Inmate

    facility = factory.SubFactory(FacilityFactory)
    inmate_number = factory.Sequence(lambda n: f"N{n:06d}")
    surname = "Wang"
    given_name = factory.Sequence(lambda n: f"Wei{n}")
    pin = "1234"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return facility_services.intake_inmate(**kwargs)


class StaffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def saved(self, create, extracted, **kwargs):
        if create:
            self.save()

    @factory.post_generation
    def facilities(self, create, extracted, **kwargs):
        """``StaffFactory(facilities=[facility])`` assigns the staff member there."""
        if create and extracted:
            for facility in extracted:
                FacilityAssignment.objects.create(user=self, facility=facility)

    @factory.post_generation
    def may_approve(self, create, extracted, **kwargs):
        """``StaffFactory(may_approve=True)``: a trust officer who may approve money."""
        if create and extracted:
            self.user_permissions.add(
                Permission.objects.get(codename="approve_money", content_type__app_label="ledger")
            )
