"""The kiosk's disputes: ``POST orders/{id}/disputes`` files one about a delivered order line,
and ``GET orders/{id}`` shows the order with its line ids, what was refunded of each line and
its disputes. Thin views over ``catalog.services.disputes``; errors in the API's envelope."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from catalog import selectors as catalog_selectors
from catalog.models import Dispute
from catalog.services import disputes as dispute_services
from commissary import errors

from . import api
from . import serializers as s

# --- shapes -------------------------------------------------------------------------------


class DisputeRequest(s.StrictSerializer):
    line = s.JSONIntegerField(
        min_value=1, max_value=2**63 - 1, help_text="The order line's id (`line_id`)."
    )
    reason = serializers.ChoiceField(choices=Dispute.Reason.values)
    text = s.JSONStringField(
        required=False,
        allow_blank=True,
        max_length=dispute_services.MAX_TEXT,
        help_text="What went wrong, in the inmate's words; required when `reason` is `other`.",
    )


class DisputeAnswer(serializers.Serializer):
    id = serializers.IntegerField()
    order = serializers.IntegerField()
    line = serializers.IntegerField()
    reason = serializers.ChoiceField(choices=Dispute.Reason.values)
    text = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=Dispute.Status.values)
    answer = serializers.CharField(
        allow_blank=True, help_text="The staff's answer to the inmate, once decided."
    )
    refunded = serializers.IntegerField(help_text="Fen given back on this dispute.")
    created_at = serializers.DateTimeField()
    deadline = serializers.DateTimeField(help_text="Staff answer by this moment.")


class OrderDetailItemAnswer(s.OrderItemAnswer):
    line_id = serializers.IntegerField(help_text="What a dispute names as `line`.")
    refunded = serializers.IntegerField(help_text="Fen given back of this line so far.")


class OrderDetailAnswer(s.OrderAnswer):
    items = OrderDetailItemAnswer(many=True)
    disputes = DisputeAnswer(many=True)


DISPUTE_EXAMPLE = {
    "id": 88,
    "order": 1017,
    "line": 2231,
    "reason": "damaged",
    "text": "The packet was torn open.",
    "status": "open",
    "answer": "",
    "refunded": 0,
    "created_at": "2026-12-02T09:15:00+08:00",
    "deadline": "2026-12-17T00:00:00+08:00",
}
ORDER_DETAIL_EXAMPLE = {
    **api.ORDER_EXAMPLE,
    "status": "delivered",
    "items": [
        {**item, "line_id": 2230 + n, "refunded": 0}
        for n, item in enumerate(api.ORDER_EXAMPLE["items"])
    ],
    "disputes": [DISPUTE_EXAMPLE],
}
api._ERROR_EXAMPLES.update(
    {
        "dispute_window_closed": "This order line can no longer be disputed: "
        "the time to do so has passed.",
        "order_not_delivered": "Only a delivered order can be disputed.",
        "dispute_exists": "This order line already has an open dispute.",
    }
)


# --- views --------------------------------------------------------------------------------


class OrderDetailView(api.OrderView):
    @extend_schema(
        operation_id="get_order",
        summary="One of the inmate's orders, with its disputes",
        description=(
            "The order as `GET orders` shows it; each item also carries its `line_id` (what a "
            "dispute names) and `refunded` (fen given back of the line: short at picking, or "
            "on a dispute), and `disputes` lists the order's disputes, oldest first."
        ),
        responses={
            200: OpenApiResponse(OrderDetailAnswer, description="The order."),
            **api._errors("session_expired", "not_found"),
        },
        examples=[OpenApiExample("An order", value=ORDER_DETAIL_EXAMPLE, response_only=True)],
    )
    def get(self, request, order_id: int):
        order = catalog_selectors.orders_of(inmate_id=self.inmate.pk).filter(pk=order_id).first()
        if order is None:
            raise errors.OrderNotFound()
        return Response(
            catalog_selectors.order_detail_answer(
                order, timezone_name=self.inmate.facility.timezone
            )
        )


class OrderDisputesView(api.KioskView):
    @extend_schema(
        operation_id="file_dispute",
        summary="Dispute a delivered order line",
        description=(
            "For a line of the inmate's own delivered order, within the facility's window "
            "after delivery (14 days by default, to the end of the facility-local day). One "
            "open dispute per line. Staff refund (all or part of what is left of the line), "
            "replace, or reject with an answer the inmate sees in `GET orders/{id}`. The same "
            "`Idempotency-Key` rules as orders: the same key with the same inmate and body "
            "returns the first answer (201); with anything else, 409 `idempotency_conflict`. "
            "Refusals are not kept under the key."
        ),
        request=DisputeRequest,
        parameters=[api.IDEMPOTENCY_PARAMETER, api.LANGUAGE_PARAMETER],
        responses={
            201: OpenApiResponse(DisputeAnswer, description="Filed, or the replay of a key."),
            **api._errors(
                "session_expired",
                "not_found",
                "idempotency_conflict",
                "dispute_exists",
                "dispute_window_closed",
                "order_not_delivered",
            ),
        },
        examples=[
            OpenApiExample(
                "Damaged",
                value={"line": 2231, "reason": "damaged", "text": "The packet was torn open."},
                request_only=True,
            ),
            OpenApiExample(
                "Filed", value=DISPUTE_EXAMPLE, response_only=True, status_codes=["201"]
            ),
        ],
    )
    def post(self, request, order_id: int):
        body = DisputeRequest(data=request.data)
        body.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key")
        if key is None:
            raise errors.ValidationFailed(_("The Idempotency-Key header is required."))
        dispute = dispute_services.file_dispute(
            inmate_id=self.inmate_id,
            device_id=self.device.pk,
            order_id=order_id,
            line_id=body.validated_data["line"],
            reason=body.validated_data["reason"],
            text=body.validated_data.get("text", ""),
            idempotency_key=key,
        )
        return Response(dispute.filed_response, status=status.HTTP_201_CREATED)
