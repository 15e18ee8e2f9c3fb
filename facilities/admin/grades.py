"""Grades (each with its spending limit per week or month, and a festival-month limit) and the
facility's festival months, when those limits apply."""

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import FacilityScopedAdmin
from commissary.errors import DomainError
from commissary.money import format_fen
from ledger.forms import YuanAmountsForm, YuanField

from .. import services
from ..models import FestivalMonth, Grade


class GradeForm(YuanAmountsForm):
    yuan_amounts = {
        "spending_limit": "spending_limit_fen",
        "festival_spending_limit": "festival_spending_limit_fen",
    }
    spending_limit = YuanField(
        label=_("Spending limit"),
        required=False,
        allow_zero=True,
        help_text=_("Commissary spending allowed per period, in yuan; empty for no limit."),
    )
    festival_spending_limit = YuanField(
        label=_("Festival-month spending limit"),
        required=False,
        allow_zero=True,
        help_text=_(
            "Allowed per period instead of the usual limit when an order falls in one of the "
            "facility's festival months, in yuan; at least the usual limit. Empty: the usual "
            "limit applies all year."
        ),
    )

    class Meta:
        model = Grade
        fields = ("facility", "name", "spending_period")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and "facility" in self.fields:
            # Inmates hold a grade of their own facility: a grade never moves to another one.
            # Disabled rather than read-only, so the name is still checked unique per facility.
            self.fields["facility"].disabled = True


@admin.register(Grade)
class GradeAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    form = GradeForm
    fields = ("facility", "name", "spending_limit", "festival_spending_limit", "spending_period")
    list_display = (
        "name",
        "facility",
        "spending_limit",
        "festival_spending_limit",
        "spending_period",
    )
    list_filter = ("facility",)
    list_select_related = ("facility",)

    def get_actions(self, request):
        # One grade at a time, through the delete page: it names the inmates holding a grade
        # and refuses to delete it, where the list action could only report a count.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_deleted_objects(self, objs, request):
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        if protected:
            # The inmates holding the grade are the refusal, not something to delete with it:
            # the page lists them (admin/facilities/grade/delete_confirmation.html) rather than
            # an inmate delete permission that nobody should have for this.
            perms_needed = set()
        return to_delete, model_count, perms_needed, protected

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as refusal:
            # An inmate was given the grade after the page checked (the service re-checks under
            # the grade's lock): the delete rolled back, and the grade's page says why.
            self.message_user(request, refusal.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:facilities_grade_change", args=[object_id]))

    def delete_model(self, request, obj):
        services.delete_grade(grade_id=obj.pk)

    @admin.display(description=_("spending limit"))
    def spending_limit(self, grade):
        if grade.spending_limit_fen is None:
            return gettext("No limit")
        return format_fen(grade.spending_limit_fen)

    @admin.display(description=_("festival-month spending limit"))
    def festival_spending_limit(self, grade):
        if grade.festival_spending_limit_fen is None:
            return gettext("As usual")
        return format_fen(grade.festival_spending_limit_fen)


class FestivalMonthForm(forms.ModelForm):
    """A festival month picked as a month (a browser's month picker, or typed as 2027-02); a
    full date is accepted too and stored as the first of its month."""

    month = forms.DateField(
        label=_("Festival month"),
        input_formats=["%Y-%m", "%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
        help_text=_(
            "For example 2027-02. Orders placed in this month, in the facility's time, are "
            "held to the grades' festival-month limits."
        ),
    )

    class Meta:
        model = FestivalMonth
        fields = ("facility", "month", "name")

    def clean_month(self):
        return self.cleaned_data["month"].replace(day=1)


@admin.register(FestivalMonth)
class FestivalMonthAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    form = FestivalMonthForm
    list_display = ("month_shown", "name", "facility")
    list_filter = ("facility",)
    list_select_related = ("facility",)
    search_fields = ("name",)
    ordering = ("facility__name", "-month")

    @admin.display(description=_("month"), ordering="month")
    def month_shown(self, festival_month):
        return f"{festival_month.month:%Y-%m}"
