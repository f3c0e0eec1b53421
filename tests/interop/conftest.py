import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def wxpay_bin():
    path = os.environ.get("WXPAY_BIN", os.path.join(ROOT, "target", "debug", "wxpay"))
    assert os.path.exists(path), "build the CLI first: cargo build --features cli (%s)" % path
    return path
