"""A real Sluice for tests, the way ``memory://`` is a storage for tests.

:class:`SluiceServer` runs the ``sluice`` binary (``$SLUICE_BIN``, else the
one on ``PATH``; build it with ``go build -o sluice ./cmd/sluice``) on a free
loopback port, in memory, with ``DEBUG`` enabled so a test can freeze its
clock and get exact answers instead of sleeping::

    from sluice_ratelimit.testing import SluiceServer

    class MyTest(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            cls.sluice = SluiceServer()
            cls.addClassCleanup(cls.sluice.close)

        def setUp(self):
            self.sluice.flush()
            self.sluice.freeze(1893456000)  # 2030-01-01T00:00:00Z
            self.app = create_app(storage_uri=self.sluice.url)

With pytest, a fixture is three lines::

    @pytest.fixture(scope="session")
    def sluice():
        with SluiceServer() as server:
            yield server

Apps whose limiter takes any storage URI can also keep using ``memory://``
in unit tests; the ``gcra`` strategy needs Sluice itself.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
from typing import Any, List, Optional, Sequence

import redis

__all__ = ["SluiceServer"]

_READY = re.compile(r"sluice ready.*?\baddr(?:=|\":\")([^\s\"]+)")


def _free_port() -> int:
    """A port free on 127.0.0.1 just now (sluice's --port 0 means no
    plaintext listener, as in Redis)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SluiceServer:
    """A ``sluice`` process on 127.0.0.1, stopped by :meth:`close` (or at the
    end of a ``with`` block). ``args`` are extra command-line flags, e.g.
    ``["--policy-file", "policies.toml"]``."""

    def __init__(self, binary: Optional[str] = None, args: Sequence[str] = (), timeout: float = 15) -> None:
        binary = binary or os.environ.get("SLUICE_BIN") or shutil.which("sluice")
        if not binary:
            raise FileNotFoundError(
                "sluice binary not found: build it (go build -o sluice ./cmd/sluice) and put it on PATH or in SLUICE_BIN"
            )
        cmd = [binary, "--bind", "127.0.0.1", "--port", str(_free_port()), "--enable-debug-command", *args]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log: List[str] = []
        found = threading.Event()
        self.addr = ""

        def drain() -> None:  # read the log to the end so the server never blocks on it
            assert self._proc.stderr is not None
            for line in self._proc.stderr:
                self.log.append(line)
                m = _READY.search(line)
                if m and not found.is_set():
                    self.addr = m.group(1)
                    found.set()
            found.set()

        threading.Thread(target=drain, daemon=True).start()
        if not found.wait(timeout) or not self.addr:
            self.close()
            raise RuntimeError("sluice did not start:\n" + "".join(self.log[-20:]))
        self.host, port = self.addr.rsplit(":", 1)
        self.port = int(port)
        self.url = f"sluice://{self.addr}"
        self.redis = redis.Redis(host=self.host, port=self.port, socket_timeout=10)

    def freeze(self, unix_seconds: float) -> None:
        """Stops the server clock at ``unix_seconds`` (DEBUG CLOCK SET)."""
        self.redis.execute_command("DEBUG", "CLOCK", "SET", round(unix_seconds * 1e9))

    def release(self) -> None:
        """Makes the server follow the real clock again."""
        self.redis.execute_command("DEBUG", "CLOCK", "REAL")

    def flush(self) -> None:
        """Forgets every limit (FLUSHALL)."""
        self.redis.flushall()

    def close(self) -> None:
        """Stops the server (SIGTERM, then SIGKILL after 10 s)."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> "SluiceServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
