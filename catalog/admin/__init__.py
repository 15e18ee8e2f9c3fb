"""Staff screens for the commissary: products and stock, restrictions, orders with their fulfilment
(pick list per housing unit, picked, delivered, cancelled with a refund) and the inmate's ID
card with its QR code. Each action calls one service; no screen moves money itself. Staff see
only their facilities' rows, through the admin's one facility scope
(``accounts.admin_scope.FacilityScopedAdmin``); products and categories are one catalogue for
every facility, and each facility's stock and availability are scoped."""

from . import inmates, orders, products  # noqa: F401 (each registers its screens)
