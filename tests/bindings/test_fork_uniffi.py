#!/usr/bin/env python3
"""A client of the uniffi Python binding (bindings/python/wxpay.py), created
and used before os.fork(), keeps working in the parent and in every child:
each process gets the answers to its own orders, and the children keep the
parent's cached access_token (the sandbox counts no token fetch while they
run). The scenario is shared with the ctypes package's test
(tests/bindings/fork_support.py).

    python3 tests/bindings/test_fork_uniffi.py http://127.0.0.1:PORT

The binding is loaded as tests/bindings/test_wxpay.py loads it. Prints
"uniffi-fork: N passed, M failed"; exits 1 on any failure. Run by
scripts/check-uniffi.sh.
"""

import json
import os
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fork_support import prefork_orders  # noqa: E402
from test_wxpay import import_binding  # noqa: E402


def get(base, path):
    with urllib.request.urlopen(f"{base}{path}", timeout=10) as reply:
        return json.load(reply)


def run(wx, base):
    sandbox = get(base, "/sandbox/config")
    keys = ("appid", "app_secret", "app_key", "partner_id", "partner_key", "notify_url", "api_base")
    client = wx.WxPayClient(wx.Config(**{key: sandbox[key] for key in keys}))

    def build(no):
        params = client.build_pay_params(wx.Order(
            out_trade_no=no, total_fee=1, total_yuan=None, body="fork", client_ip="196.168.1.1"))
        return params.out_trade_no, params.prepayid

    # The first order fetches the token (unless an earlier suite's client
    # left one in the sandbox: each client fetches its own once).
    build(f"UFW{os.getpid()}")
    fetches = get(base, "/sandbox/stats")["token_fetches"]
    problems, ids = prefork_orders(build, "UF")
    if get(base, "/sandbox/stats")["token_fetches"] != fetches:
        problems.append("a child fetched a token of its own")
    recorded = {o["prepayid"] for o in get(base, "/sandbox/orders")}
    if not set(ids) <= recorded:
        problems.append("a prepay id the sandbox never issued")
    for problem in problems:
        print(f"FAIL {problem}")
    passed = 0 if problems else 1
    print(f"uniffi-fork: {passed} passed, {len(problems)} failed")
    return 1 if problems else 0


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="wxpay-py-fork-") as tmp:
        return run(import_binding(tmp), argv[1].rstrip("/"))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
