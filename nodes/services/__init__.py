"""Shop node operations: registration, the feed, reports, offline sales intake, the chains' check.

None commits.
"""

from nodes.services.feed import read_feed
from nodes.services.intake import NodeSaleResult, OfflineSaleRequest, receive_offline_sale
from nodes.services.registration import NODE_TOKEN_HEADER, is_node_of, node_of, register_node
from nodes.services.report import record_report
from nodes.services.verify import NodeChainReport, verify_node_chains

__all__ = [
    "NODE_TOKEN_HEADER",
    "NodeChainReport",
    "NodeSaleResult",
    "OfflineSaleRequest",
    "is_node_of",
    "node_of",
    "read_feed",
    "receive_offline_sale",
    "record_report",
    "register_node",
    "verify_node_chains",
]
