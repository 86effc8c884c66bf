"""Inventory operations. Each takes the session, the acting user and the time; none commits.

Split by topic: shops, the catalogue, the movement journal every operation goes through,
the stock operations of a shop, the counter's own stock step (sale_stock), and reading
(reports). Callers import from here.
"""

from inventory.services.catalogue import (
    BARCODE_CHARS,
    MAX_POINTS_PRICE,
    SKU_CHARS,
    ProductRef,
    create_product,
    get_product,
    product_by_barcode,
    product_by_code,
    products_by_sku,
    products_in_order,
    search_products,
    sku_spellings,
    update_product,
)
from inventory.services.journal import MAX_LINES, MAX_QUANTITY
from inventory.services.reports import (
    Difference,
    ReconcileReport,
    StockItem,
    get_operation,
    list_movements,
    list_stock,
    other_shop_of,
    reconcile_stock,
    stock_on_hand,
    stock_value,
)
from inventory.services.sale_stock import SaleStock, take_sale_stock
from inventory.services.shops import (
    create_shop,
    get_shop,
    list_shops,
    shop_for_manager,
    shop_for_staff,
    update_shop,
)
from inventory.services.stock import (
    OUTGOING_REASONS,
    adjust_stock,
    count_stock,
    receive_stock,
    record_stock_sale,
    return_stock,
    set_reorder_levels,
    transfer_stock,
)

__all__ = [
    "BARCODE_CHARS",
    "MAX_LINES",
    "MAX_POINTS_PRICE",
    "MAX_QUANTITY",
    "OUTGOING_REASONS",
    "SKU_CHARS",
    "Difference",
    "ProductRef",
    "ReconcileReport",
    "SaleStock",
    "StockItem",
    "adjust_stock",
    "count_stock",
    "create_product",
    "create_shop",
    "get_operation",
    "get_product",
    "get_shop",
    "list_movements",
    "list_shops",
    "list_stock",
    "other_shop_of",
    "product_by_barcode",
    "product_by_code",
    "products_by_sku",
    "products_in_order",
    "receive_stock",
    "reconcile_stock",
    "record_stock_sale",
    "return_stock",
    "search_products",
    "set_reorder_levels",
    "shop_for_manager",
    "shop_for_staff",
    "sku_spellings",
    "stock_on_hand",
    "stock_value",
    "take_sale_stock",
    "transfer_stock",
    "update_product",
    "update_shop",
]
