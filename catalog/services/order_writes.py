"""The statements that write a placed order's stock, order row, lines and first answer."""

import json

from ledger.services.posting import execute

from ..models import Order, OrderItem


class _OrderWrites:
    """The statements that write a placed order. PostgreSQL writes the stock, the whole order
    (its id taken from the sequence beforehand) and its lines in one statement, after the
    debit; SQLite, which has neither sequences nor writes inside WITH, writes stock, order and
    lines first and the order's debit and answer after."""

    def __init__(self, cursor, *, order: Order, items: list[OrderItem], offers, wanted):
        self.cursor, self.order, self.items = cursor, order, items
        self.stock_ids = [offer.id for offer in offers]
        self.stock_taken = [wanted[offer.product_id] for offer in offers]

    def _stock_sql(self) -> tuple[str, list]:
        return (
            "UPDATE catalog_facilityproduct SET stock = stock - CASE id "  # noqa: S608 - placeholder lists; values are bound
            + " ".join("WHEN %s THEN %s" for _ in self.stock_ids)
            + " END WHERE id IN ("
            + ", ".join("%s" for _ in self.stock_ids)
            + ")",
            [v for pair in zip(self.stock_ids, self.stock_taken, strict=True) for v in pair]
            + self.stock_ids,
        )

    def _items_sql(self) -> tuple[str, list]:
        return (
            "INSERT INTO catalog_orderitem (order_id, product_id, name_zh, name_en, quantity, "  # noqa: S608 - placeholder lists; values are bound
            "unit_price_fen, line_total_fen) VALUES "
            + ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(self.items)),
            [
                value
                for item in self.items
                for value in (
                    self.order.pk,
                    item.product_id,
                    item.name_zh,
                    item.name_en,
                    item.quantity,
                    item.unit_price_fen,
                    item.line_total_fen,
                )
            ],
        )

    _ORDER_COLUMNS = (
        "facility_id, inmate_id, device_id, status, total_fen, currency, idempotency_scope, "
        "idempotency_key, request_hash, placed_response, purchase_id, created_at, cancel_reason"
    )

    def _order_params(self) -> list:
        order = self.order
        return [
            order.facility_id,
            order.inmate_id,
            order.device_id,
            order.status,
            order.total_fen,
            order.currency,
            order.idempotency_scope,
            order.idempotency_key,
            order.request_hash,
            json.dumps(order.placed_response),
            order.purchase_id,
            order.created_at,
            "",
        ]

    def stock(self) -> None:
        self.cursor.execute(*self._stock_sql())

    def order_and_items(self) -> None:
        execute(
            self.cursor,
            f"INSERT INTO catalog_order ({self._ORDER_COLUMNS}) "  # noqa: S608 - constant column list; values are bound
            f"VALUES ({', '.join(['%s'] * 13)}) RETURNING id",
            self._order_params(),  # no purchase and an empty answer yet: ``answer`` sets them
        )
        self.order.pk = self.cursor.fetchone()[0]
        for item in self.items:
            item.order_id = self.order.pk
        self.cursor.execute(*self._items_sql())

    def answer(self) -> None:
        self.cursor.execute(
            "UPDATE catalog_order SET purchase_id = %s, placed_response = %s WHERE id = %s",
            [self.order.purchase_id, json.dumps(self.order.placed_response), self.order.pk],
        )

    def stock_order_and_items(self) -> bool:
        """PostgreSQL: the stock rows locked in primary-key order (the lock order) and their
        units taken where they are still there, the whole order written only if every line's
        units were, and its lines: one statement. False, with nothing written, when another
        order took the units first."""
        items = self.items
        stock_rows = ", ".join(["%s"] * len(self.stock_ids))
        wants = ", ".join(["(%s::bigint, %s::bigint)"] * len(self.stock_ids))
        lines = ", ".join(["(%s::bigint, %s, %s, %s::bigint, %s::bigint, %s::bigint)"] * len(items))
        self.cursor.execute(
            "WITH locked AS (SELECT id FROM catalog_facilityproduct "  # noqa: S608 - placeholder lists and constant column names; values are bound
            f"WHERE id IN ({stock_rows}) ORDER BY id FOR UPDATE), "
            "taken AS (UPDATE catalog_facilityproduct fp SET stock = fp.stock - want.quantity "
            f"FROM locked, (VALUES {wants}) AS want (id, quantity) "
            "WHERE fp.id = locked.id AND fp.id = want.id AND fp.stock >= want.quantity "
            "RETURNING fp.id), "
            f"placed AS (INSERT INTO catalog_order (id, {self._ORDER_COLUMNS}) "
            "SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s "
            "WHERE (SELECT count(*) FROM taken) = %s RETURNING id) "
            "INSERT INTO catalog_orderitem (order_id, product_id, name_zh, name_en, quantity, "
            "unit_price_fen, line_total_fen) "
            "SELECT placed.id, line.product_id, line.name_zh, line.name_en, line.quantity, "
            "line.unit_price_fen, line.line_total_fen FROM placed, "
            f"(VALUES {lines}) AS line (product_id, name_zh, name_en, quantity, "
            "unit_price_fen, line_total_fen) RETURNING order_id",
            [
                *self.stock_ids,
                *[v for pair in zip(self.stock_ids, self.stock_taken, strict=True) for v in pair],
                self.order.pk,
                *self._order_params(),
                len(self.stock_ids),
                *[
                    value
                    for item in items
                    for value in (
                        item.product_id,
                        item.name_zh,
                        item.name_en,
                        item.quantity,
                        item.unit_price_fen,
                        item.line_total_fen,
                    )
                ],
            ],
        )
        return self.cursor.fetchone() is not None
