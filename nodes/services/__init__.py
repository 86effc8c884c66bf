"""Shop node operations: registration, the feed, reports, offline sales intake, the chains' check.

None commits.
"""

from nodes.services.feed import read_feed
from nodes.services.intake import NodeSaleResult, OfflineSaleRequest, receive_offline_sale
from nodes.services.overview import NodeRow, list_exceptions, list_nodes
from nodes.services.registration import node_of, register_node
from nodes.services.report import record_report
from nodes.services.verify import NodeChainReport, verify_node_chains

__all__ = [
    "NodeChainReport",
    "NodeRow",
    "NodeSaleResult",
    "OfflineSaleRequest",
    "list_exceptions",
    "list_nodes",
    "node_of",
    "read_feed",
    "receive_offline_sale",
    "record_report",
    "register_node",
    "verify_node_chains",
]
