"""A client created and used before os.fork() keeps working in the parent and
in every child, as in a prefork server (gunicorn --preload, multiprocessing's
fork start method): each process gets the answers to its own orders, and the
children keep the parent's cached access_token. The scenario is shared with
the uniffi binding's test (tests/bindings/fork_support.py)."""

import os
import sys
from pathlib import Path

import pytest

import wxpay_ctypes

SUPPORT_DIR = str(Path(__file__).resolve().parents[3] / "tests" / "bindings")
if SUPPORT_DIR not in sys.path:
    sys.path.insert(0, SUPPORT_DIR)
from fork_support import prefork_orders  # noqa: E402

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")


def test_a_client_used_before_fork_works_in_the_parent_and_every_child(fresh_sandbox):
    client = wxpay_ctypes.Client(fresh_sandbox.config())

    def build(no):
        params = client.build_pay_params(
            {"out_trade_no": no, "total_fee": 1, "body": "fork", "client_ip": "196.168.1.1"}
        )
        return params["out_trade_no"], params["prepayid"]

    problems, ids = prefork_orders(build, "PYF", close=client.close)
    client.close()
    assert problems == []
    recorded = {o["prepayid"] for o in fresh_sandbox.orders()}
    assert set(ids) <= recorded
    # One token for every process: the children used the parent's.
    assert fresh_sandbox.stats()["token_fetches"] == 1
