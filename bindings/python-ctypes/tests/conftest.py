"""Fixtures: a `wxpay sandbox` process per session (and a fresh one on
demand), with helpers for its /sandbox/* control endpoints.

The sandbox binary is $WXPAY_BIN, else target/debug/wxpay of this repository
(`cargo build --features cli`). The library is found as wxpay_ctypes finds it
($WXPAY_LIB, else target/release, else target/debug).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
REPO_ROOT = Path(__file__).resolve().parents[3]
# Importable without PYTHONPATH too.
if str(PACKAGE_ROOT) not in sys.path:
    sys.path.insert(0, str(PACKAGE_ROOT))


def wxpay_bin() -> Path:
    return Path(os.environ.get("WXPAY_BIN") or REPO_ROOT / "target" / "debug" / "wxpay")


class SandboxProcess:
    """A `wxpay sandbox --port 0` child process and its control endpoints."""

    def __init__(self, binary: Path) -> None:
        if not binary.is_file():
            pytest.fail(
                "{} not found: build it with `cargo build --features cli` or set WXPAY_BIN".format(
                    binary
                )
            )
        # stdout goes to a file: nobody has to keep reading a pipe.
        self._stdout = tempfile.TemporaryFile(mode="w+")
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [str(binary), "sandbox", "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
        )
        self.base_url = self._first_line(timeout=30.0)

    def _first_line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._stdout.seek(0)
            text = self._stdout.read()
            if "\n" in text:
                line = text.split("\n", 1)[0].strip()
                if not line.startswith("http://"):
                    self.stop()
                    pytest.fail("wxpay sandbox printed {!r}, not its base URL".format(line))
                return line
            if self.process.poll() is not None:
                self._stderr.seek(0)
                pytest.fail(
                    "wxpay sandbox exited with {}: {}".format(
                        self.process.returncode, self._stderr.read()[-2000:]
                    )
                )
            time.sleep(0.02)
        self.stop()
        pytest.fail("wxpay sandbox printed no base URL within {} s".format(timeout))

    def request(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode("utf-8")
        return json.loads(text) if text else None

    def config(self) -> dict:
        """The client configuration matching this sandbox."""
        return self.request("GET", "/sandbox/config")

    def config_v2(self) -> dict:
        """The API v2 client configuration matching this sandbox."""
        return self.request("GET", "/sandbox/config?api=v2")

    def pay(self, out_trade_no: str) -> None:
        """The user pays the v2 order: the sandbox then POSTs the signed
        notification to the order's notify_url (until acknowledged)."""
        self.request("POST", "/sandbox/pay", {"out_trade_no": out_trade_no})

    def notifications(self) -> list:
        return self.request("GET", "/sandbox/notifications")

    def stats(self) -> dict:
        return self.request("GET", "/sandbox/stats")

    def orders(self) -> list:
        return self.request("GET", "/sandbox/orders")

    def fault(self, rule: dict) -> None:
        self.request("POST", "/sandbox/faults", rule)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if os.environ.get("WXPAY_LOG"):
            # Its log lines, for whoever reads this run's output (pytest -s).
            self._stderr.seek(0)
            sys.stderr.write(self._stderr.read())
        self._stdout.close()
        self._stderr.close()


@pytest.fixture(scope="session")
def sandbox():
    """One sandbox for the whole session (faults armed by a test are spent by it)."""
    process = SandboxProcess(wxpay_bin())
    yield process
    process.stop()


@pytest.fixture
def fresh_sandbox():
    """A sandbox of its own, for tests that count token fetches or orders."""
    process = SandboxProcess(wxpay_bin())
    yield process
    process.stop()
