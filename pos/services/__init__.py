"""Counter operations. Each takes the session, the acting user and the time; none commits.

Split by topic (the counter's look-ups, selling, sale history, returns and voids, the day's
report, what goes on paper); every public name is here, so callers import `pos.services`.
"""

from pos.services.counter import (
    NODE_TOKEN_HEADER,
    Customer,
    Goods,
    counter_shop,
    counter_shops,
    find_customer,
    find_goods,
    is_node_of,
)
from pos.services.history import (
    SalesSearch,
    SearchKind,
    find_sales,
    get_sale,
    household_heads,
    search_sales,
)
from pos.services.limits import MAX_LINES, MAX_QUANTITY, MAX_REASON
from pos.services.printouts import (
    daily_report_escpos,
    receipt_data,
    report_print_data,
    sale_receipt,
    sale_receipt_escpos,
    sale_receipt_png,
)
from pos.services.reports import DailyReport, ProductDay, daily_report, daily_report_csv
from pos.services.returns import record_return, returned_qty, void_sale
from pos.services.selling import (
    Forgiven,
    LineRequest,
    OfflineSale,
    SaleLineView,
    SaleResult,
    SaleView,
    receipt_number,
    record_sale,
)

__all__ = [
    "MAX_LINES",
    "MAX_QUANTITY",
    "MAX_REASON",
    "NODE_TOKEN_HEADER",
    "Customer",
    "DailyReport",
    "Forgiven",
    "Goods",
    "LineRequest",
    "OfflineSale",
    "ProductDay",
    "SaleLineView",
    "SaleResult",
    "SaleView",
    "SalesSearch",
    "SearchKind",
    "counter_shop",
    "counter_shops",
    "daily_report",
    "daily_report_csv",
    "daily_report_escpos",
    "find_customer",
    "find_goods",
    "find_sales",
    "get_sale",
    "household_heads",
    "is_node_of",
    "receipt_data",
    "receipt_number",
    "record_return",
    "record_sale",
    "report_print_data",
    "returned_qty",
    "sale_receipt",
    "sale_receipt_escpos",
    "sale_receipt_png",
    "search_sales",
    "void_sale",
]
