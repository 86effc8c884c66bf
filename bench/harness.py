"""What the benchmarks that run a real server share: a port, the server, CPU counters."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    url: str,
    home: str,
    port: int,
    *,
    workers: int,
    threads: int,
    secrets: dict[str, str],
    ready_path: str,
) -> subprocess.Popen[bytes]:
    """`integrity-pos serve` on this checkout's code, once `ready_path` answers 401."""
    env = dict(os.environ)
    env.update(
        {
            "INTEGRITY_POS_HOME": home,
            "DATABASE_URL": url,
            **{f"INTEGRITY_POS_{k}": v for k, v in secrets.items()},
            # The server runs this checkout's code, even packages added since the install.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        }
    )
    command = [str(Path(sys.executable).parent / "integrity-pos"), "serve"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--workers", str(workers), "--threads", str(threads)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    # An HTTP answer, not a TCP connect: the kernel completes connections on the listening
    # socket before any worker has built its app.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", ready_path)
            if conn.getresponse().status == 401:
                return server
        except OSError:
            time.sleep(0.2)
        finally:
            conn.close()
    server.kill()
    sys.exit("the server did not start")
