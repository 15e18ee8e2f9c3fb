"""The kiosk API (``/api/kiosk/v1/``): one thin view per action over the kiosk, catalog and
ledger services and selectors. Every failure is answered in the envelope of ``kiosk.errors``.

About 550 lines of thin views, one per endpoint, each with its OpenAPI description and
examples: together they are the published contract, which reads best in one file.
"""

from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import pagination, status
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors as catalog_selectors
from catalog import services as catalog_services
from commissary import errors, metrics
from facilities.models import Inmate
from ledger import memos
from ledger import selectors as ledger_selectors

from . import serializers as s
from . import services
from .authentication import (
    SESSION_HEADER,
    DeviceThrottle,
    KioskDeviceAuthentication,
    SignInThrottle,
)
from .errors import STATUS_BY_CODE
from .parsers import JSONParser

PAGE_SIZE = 20


class Page(pagination.PageNumberPagination):
    page_size = PAGE_SIZE


# --- documentation helpers ---------------------------------------------------------------

_ERROR_EXAMPLES = {
    "validation_error": "items: A whole number (a JSON integer) is required.",
    "not_authenticated": "This kiosk key is unknown or has been revoked.",
    "invalid_credentials": "The inmate number, card or PIN is wrong.",
    "session_expired": "The session has ended; sign in again.",
    "not_found": "No such order.",
    "method_not_allowed": 'Method "PUT" not allowed.',
    "idempotency_conflict": "This idempotency key was already used for a different request.",
    "unsupported_media_type": 'Unsupported media type "text/plain" in request.',
    "insufficient_funds": "The inmate's spendable balance is too low.",
    "spending_limit_exceeded": "This order would take the inmate over the spending limit.",
    "out_of_stock": "Only 2 of Instant noodles are left.",
    "product_restricted": "The inmate may not buy this product now.",
    "account_frozen": "The inmate's account is frozen.",
    "inmate_released": "The inmate has been released; the account is closed.",
    "locked_out": "Too many wrong PINs: kiosk sign-in is locked for a while.",
    "throttled": "Too many requests from this kiosk; try again in 12 seconds.",
    "request_too_large": "The request body is larger than 2621440 bytes.",
}


def _errors(*codes: str, is_throttled: bool = True) -> dict:
    """OpenAPI responses for these error codes, grouped by status, each with an example."""
    by_status: dict[int, list[str]] = {}
    common = ["validation_error", "not_authenticated", "method_not_allowed"]
    common.append("unsupported_media_type")
    if is_throttled:
        common.append("throttled")
    for code in (*common, *codes):
        by_status.setdefault(STATUS_BY_CODE[code], []).append(code)
    responses = {}
    for http_status, status_codes in by_status.items():
        responses[http_status] = OpenApiResponse(
            response=s.ErrorAnswer,
            description=", ".join(f"`{code}`" for code in status_codes),
            examples=[
                OpenApiExample(
                    code,
                    value={"error": {"code": code, "message": _ERROR_EXAMPLES[code]}},
                    status_codes=[str(http_status)],
                    response_only=True,
                )
                for code in status_codes
            ],
        )
    return responses


LANGUAGE_PARAMETER = OpenApiParameter(
    "Accept-Language",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="`zh-hans` or `en`: the language of product names and messages.",
)
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=True,
    pattern=r"^[!-~][ -~]{0,127}$",
    description=(
        "1-128 printable ASCII characters (not starting with a space) chosen by the kiosk, "
        "unique per order. The same key with the same inmate and body returns the first "
        "answer again, with its status: the order (201), or the refusal it got (404 or 422; "
        "a body refused as invalid, 400, is not kept). With anything else the key is refused "
        "with 409 `idempotency_conflict`."
    ),
)
PAGE_PARAMETER = OpenApiParameter(
    "page",
    {"type": "integer", "minimum": 1, "maximum": 10**9 - 1},
    OpenApiParameter.QUERY,
    required=False,
    description="1-based; 20 a page.",
)
INMATE_EXAMPLE = {"id": 42, "inmate_number": "D0000042", "name": "王伟"}
ORDER_EXAMPLE = {
    "id": 1017,
    "status": "placed",
    "items": [
        {"product_id": 3, "name": "方便面", "quantity": 2, "unit_price": 450, "line_total": 900},
        {"product_id": 8, "name": "牙膏", "quantity": 1, "unit_price": 1200, "line_total": 1200},
    ],
    "total": 2100,
    "currency": "CNY",
    "balance_after": 47900,
    "created_at": "2026-11-30T17:42:05.120000+08:00",
}


def _page_example(result: dict) -> dict:
    return {"count": 1, "next": None, "previous": None, "results": [result]}


# --- views --------------------------------------------------------------------------------


class KioskView(APIView):
    """A kiosk request: the device's key is checked first, then (for inmate views) the
    inmate's session at this kiosk, whose idle clock restarts."""

    authentication_classes = [KioskDeviceAuthentication]
    parser_classes = [JSONParser]
    throttle_classes = [DeviceThrottle]
    needs_inmate_session = True
    query_parameters: frozenset[str] = frozenset()

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        unknown = sorted(set(request.query_params) - self.query_parameters)
        if unknown:
            raise errors.ValidationFailed(
                _("Unknown query parameter: %(name)s.") % {"name": unknown[0]}
            )
        self.inmate_id = None
        if self.needs_inmate_session:
            self.inmate_id = services.touch_session(
                device=self.device,
                token=request.headers.get(SESSION_HEADER),
                now=request.kiosk_checked_at,
                read=request.kiosk_session,
            )

    @cached_property
    def inmate(self) -> Inmate:
        """The signed-in inmate, read when a view needs more than its id."""
        return Inmate.objects.select_related("facility", "grade").get(pk=self.inmate_id)

    @property
    def device(self):
        return self.request.auth

    def paginated(self, queryset, shape):
        """One page of 20 (``?page=``, a whole number from 1); a page past the end is
        ``not_found``."""
        page_number = self.request.query_params.get("page")
        if page_number is not None and not (
            page_number.isascii() and page_number.isdigit() and 1 <= int(page_number) < 10**9
        ):
            raise errors.ValidationFailed(_("page is a whole number from 1."))
        paginator = Page()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response([shape(row) for row in page])


def _inmate_payload(inmate: Inmate) -> dict:
    return {
        "id": inmate.pk,
        "inmate_number": inmate.inmate_number,
        "name": f"{inmate.surname}{inmate.given_name}",
    }


class SessionsView(KioskView):
    needs_inmate_session = False
    throttle_classes = [DeviceThrottle, SignInThrottle]

    @extend_schema(
        operation_id="sign_in",
        summary="Sign an inmate in at this kiosk",
        description=(
            "With the inmate number (or the card token from the QR code on the ID card) and "
            "the PIN. Every attempt is counted before its PIN is checked, and five lock the "
            "inmate out of every kiosk for 15 minutes (a right PIN among the first five still "
            "signs in and clears the count): from the sixth on, every attempt gets 423 "
            "`locked_out` with `Retry-After`, the seconds until the lock-out ends, even with the "
            "right PIN, also when the attempts arrive at the same moment. Sign-in attempts are "
            "also throttled per kiosk (429 `throttled` with `Retry-After`, a sliding window). "
            "A body over the upload limit is 413 `request_too_large`."
        ),
        request=PolymorphicProxySerializer(
            component_name="SessionRequest",
            serializers=[s.SignInByNumber, s.SignInByCard],
            resource_type_field_name=None,
        ),
        parameters=[LANGUAGE_PARAMETER],
        responses={
            201: OpenApiResponse(s.SessionAnswer, description="Signed in."),
            **_errors("invalid_credentials", "locked_out", "request_too_large"),
        },
        examples=[
            OpenApiExample(
                "By inmate number",
                value={"inmate_number": "D0000042", "pin": "1234"},
                request_only=True,
            ),
            OpenApiExample(
                "By ID card",
                value={"card": "q8Xz0v9mM1bKc3Yw5eR2tLpN", "pin": "1234"},
                request_only=True,
            ),
            OpenApiExample(
                "Signed in",
                value={
                    "session": "Zk3l0b2m9mQv7pYc8wT1xR4sN6uA5dE2hJ0kL3nP7qS",
                    "expires_at": "2026-11-30T17:52:05+08:00",
                    "inmate": INMATE_EXAMPLE,
                },
                response_only=True,
                status_codes=["201"],
            ),
        ],
    )
    def post(self, request):
        body = s.SessionRequest(data=request.data)
        body.is_valid(raise_exception=True)
        session, token = services.sign_in(device=self.device, **body.validated_data)
        expires_at = session.last_seen_at + services.idle_timeout()
        return Response(
            {
                "session": token,
                "expires_at": catalog_selectors.iso(expires_at, self.device.facility.timezone),
                "inmate": _inmate_payload(session.inmate),
            },
            status=status.HTTP_201_CREATED,
        )


class CurrentSessionView(KioskView):
    # Sign-out is never throttled: a kiosk that has used up its rate must still be able to
    # end the inmate's session rather than leave it open at an unattended screen.
    throttle_classes = []

    @extend_schema(
        operation_id="sign_out",
        summary="Sign the inmate out",
        description="Never throttled: a kiosk past its rate can still end a session.",
        responses={
            204: OpenApiResponse(description="Signed out."),
            **_errors("session_expired", is_throttled=False),
        },
    )
    def delete(self, request):
        services.sign_out(device=self.device, token=request.headers.get(SESSION_HEADER))
        return Response(status=status.HTTP_204_NO_CONTENT)


class BalanceView(KioskView):
    @extend_schema(
        operation_id="balance",
        summary="The inmate's money, caps and spending room",
        description=(
            "`spending.limit` is the grade's limit at this moment: in a month the facility "
            "declared a festival month (in facility time) it is the grade's festival-month "
            "limit when the grade has one, else its usual limit; `null` when there is none."
        ),
        responses={
            200: OpenApiResponse(s.BalanceAnswer, description="The balance."),
            **_errors("session_expired"),
        },
        examples=[
            OpenApiExample(
                "Balance",
                value={
                    "available": 50000,
                    "held": 0,
                    "currency": "CNY",
                    "balance_cap": 500000,
                    "month": {"received": 60000, "reserved": 0, "cap": 100000, "remaining": 40000},
                    "spending": {
                        "period": "month",
                        "spent": 10000,
                        "limit": 50000,
                        "remaining": 40000,
                    },
                },
                response_only=True,
            )
        ],
    )
    def get(self, request):
        now = timezone.now()
        balance = ledger_selectors.inmate_balance(inmate=self.inmate, now=now)
        spending = catalog_selectors.spending_of(inmate=self.inmate, now=now)
        return Response(
            {
                "available": balance.spendable_fen,
                "held": balance.held_fen,
                "currency": balance.currency,
                "balance_cap": balance.balance_cap_fen,
                "month": {
                    "received": balance.month_received_fen,
                    "reserved": balance.month_reserved_fen,
                    "cap": balance.monthly_cap_fen,
                    "remaining": balance.month_remaining_fen,
                },
                "spending": {
                    "period": spending.period,
                    "spent": spending.spent_fen,
                    "limit": spending.limit_fen,
                    "remaining": spending.remaining_fen,
                },
            }
        )


class CatalogView(KioskView):
    query_parameters = frozenset({"page"})

    @extend_schema(
        operation_id="catalog",
        summary="Products this inmate may buy here",
        description=(
            "Paginated, 20 a page; names in the request's language. `price` is the price in "
            "force now (what an order pays); `next_price` is a rise already announced, with the "
            'facility-local date it takes effect (show it as "price from <date>"), else null.'
        ),
        parameters=[PAGE_PARAMETER, LANGUAGE_PARAMETER],
        responses={
            200: OpenApiResponse(s.ProductPage, description="A page of products."),
            **_errors("session_expired", "not_found"),
        },
        examples=[
            OpenApiExample(
                "A page",
                value=_page_example(
                    {
                        "id": 3,
                        "sku": "FOOD-001",
                        "name": "方便面",
                        "category": "食品",
                        "price": 450,
                        "currency": "CNY",
                        "max_per_order": 10,
                        "in_stock": 120,
                        "next_price": {"price": 480, "effective_on": "2026-12-14"},
                    }
                ),
                response_only=True,
            )
        ],
    )
    def get(self, request):
        currency = self.inmate.facility.currency
        return self.paginated(
            catalog_selectors.catalog_for(inmate=self.inmate),
            lambda offer: {
                "id": offer.product_id,
                "sku": offer.product.sku,
                "name": offer.product.name(),
                "category": offer.product.category.name(),
                "price": offer.price_now_fen,
                "currency": currency,
                "max_per_order": offer.product.max_per_order,
                "in_stock": offer.stock,
                "next_price": None
                if offer.next_price_fen is None
                else {
                    "price": offer.next_price_fen,
                    "effective_on": offer.next_price_on.isoformat(),
                },
            },
        )


class OrdersView(KioskView):
    query_parameters = frozenset({"page"})

    @extend_schema(
        operation_id="list_orders",
        summary="The inmate's orders, newest first",
        parameters=[PAGE_PARAMETER, LANGUAGE_PARAMETER],
        responses={
            200: OpenApiResponse(s.OrderPage, description="A page of orders."),
            **_errors("session_expired", "not_found"),
        },
        examples=[OpenApiExample("A page", value=_page_example(ORDER_EXAMPLE), response_only=True)],
    )
    def get(self, request):
        timezone_name = self.inmate.facility.timezone
        return self.paginated(
            catalog_selectors.orders_of(inmate_id=self.inmate.pk),
            lambda order: catalog_selectors.order_answer(order, timezone_name=timezone_name),
        )

    @extend_schema(
        operation_id="place_order",
        summary="Place an order",
        description=(
            "Prices come from the server only; the body carries products and quantities, "
            "nothing else. One atomic step: stock is taken, the grade's spending limit for the "
            "week or month (its festival-month limit when the order falls in one of the "
            "facility's festival months) is checked, and the total is debited from spendable "
            "money; any refusal changes nothing. Each product at most once; a quantity is a "
            "JSON integer from 1 to the product's `max_per_order`."
        ),
        request=s.OrderRequest,
        parameters=[IDEMPOTENCY_PARAMETER, LANGUAGE_PARAMETER],
        responses={
            201: OpenApiResponse(s.OrderAnswer, description="Placed, or the replay of a key."),
            **_errors(
                "session_expired",
                "not_found",
                "idempotency_conflict",
                "insufficient_funds",
                "spending_limit_exceeded",
                "out_of_stock",
                "product_restricted",
                "account_frozen",
                "inmate_released",
                "request_too_large",
            ),
        },
        examples=[
            OpenApiExample(
                "Two products",
                value={
                    "items": [{"product_id": 3, "quantity": 2}, {"product_id": 8, "quantity": 1}]
                },
                request_only=True,
            ),
            OpenApiExample("Placed", value=ORDER_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
    )
    def post(self, request):
        items = s.order_items(request.data)
        key = request.headers.get("Idempotency-Key")
        if key is None:
            raise errors.ValidationFailed(_("The Idempotency-Key header is required."))
        try:
            order = catalog_services.place_order(
                inmate_id=self.inmate_id,
                device_id=self.device.pk,
                items=items,
                idempotency_key=key,
            )
        except errors.DomainError as refusal:
            metrics.KIOSK_ORDERS.labels(refusal.code).inc()
            raise
        metrics.KIOSK_ORDERS.labels("placed").inc()
        return Response(order.placed_response, status=status.HTTP_201_CREATED)


class OrderView(KioskView):
    @extend_schema(
        operation_id="get_order",
        summary="One of the inmate's orders",
        responses={
            200: OpenApiResponse(s.OrderAnswer, description="The order."),
            **_errors("session_expired", "not_found"),
        },
        examples=[OpenApiExample("An order", value=ORDER_EXAMPLE, response_only=True)],
    )
    def get(self, request, order_id: int):
        order = catalog_selectors.orders_of(inmate_id=self.inmate.pk).filter(pk=order_id).first()
        if order is None:
            raise errors.OrderNotFound()
        return Response(
            catalog_selectors.order_answer(order, timezone_name=self.inmate.facility.timezone)
        )


class TransactionsView(KioskView):
    query_parameters = frozenset({"page"})

    @extend_schema(
        operation_id="statement",
        summary="The inmate's statement lines, newest first",
        parameters=[PAGE_PARAMETER],
        responses={
            200: OpenApiResponse(s.StatementPage, description="A page of statement lines."),
            **_errors("session_expired", "not_found"),
        },
        examples=[
            OpenApiExample(
                "A page",
                value=_page_example(
                    {
                        "id": 5521,
                        "created_at": "2026-11-30T17:42:05.120000+08:00",
                        "kind": "purchase",
                        "description": "狱内商店订单 #1017",
                        "memo": "Commissary order #1017",
                        "amount": -2100,
                        "account": "spendable",
                        "currency": "CNY",
                    }
                ),
                response_only=True,
            )
        ],
    )
    def get(self, request):
        timezone_name = self.inmate.facility.timezone
        return self.paginated(
            ledger_selectors.statement_entries(inmate=self.inmate),
            lambda entry: {
                "id": entry.pk,
                "created_at": catalog_selectors.iso(entry.transaction.created_at, timezone_name),
                "kind": entry.transaction.kind,
                "description": memos.description(
                    kind_label=entry.transaction.get_kind_display(), memo=entry.transaction.memo
                ),
                "memo": entry.transaction.memo,
                "amount": entry.amount_fen,
                "account": entry.account.kind,
                "currency": entry.account.currency,
            },
        )
