"""Receipt printing: printers per shop, print jobs, the server's worker, devices, the print agent.

It may use the counter (`pos`); the counter never imports it and says what happened through
`pos.signals`, which `printing.extension.init_app` connects to.
"""
