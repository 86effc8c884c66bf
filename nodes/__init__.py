"""Shop nodes, the county's side: which node runs which shop, and the offline sales it posts.

A shop node (API.md, "Shop node") sells by itself while its shop's line to the county is
down. The county registers one node per shop, keeps the offline allowance of its villages'
households in escrow (ledger.SpendMode), and takes the node's offline sales in order,
exactly once, chained by hash (nodes.chain).
"""
