#!/usr/bin/env python3
"""Host test of the uniffi Python binding (bindings/python/wxpay.py) against a
running sandbox. It checks the glue (records in, records and exceptions out,
sharing across threads), not the signing logic again.

    python3 tests/bindings/test_wxpay.py http://127.0.0.1:PORT

The binding loads libwxpay.so from its own directory, so the test copies
bindings/python/wxpay.py and the library (target/debug/libwxpay.so, or
$WXPAY_LIB) into a temporary directory and imports it from there.
Prints one line per check and "python: N passed, M failed"; exits 1 on any
failure. Run by scripts/check-uniffi.sh.
"""

import concurrent.futures
import dataclasses
import importlib
import json
import os
import re
import shutil
import sys
import tempfile
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def import_binding(tmp):
    """Copies the binding and the cdylib side by side and imports `wxpay`."""
    lib = os.environ.get("WXPAY_LIB") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"),
        "debug",
        "libwxpay.dylib" if sys.platform == "darwin" else "libwxpay.so",
    )
    shutil.copy(os.path.join(ROOT, "bindings", "python", "wxpay.py"), tmp)
    shutil.copy(lib, tmp)
    sys.path.insert(0, tmp)
    return importlib.import_module("wxpay")


@dataclasses.dataclass
class Results:
    passed: int = 0
    failed: int = 0

    def check(self, name, body):
        try:
            body()
        except Exception as e:  # report every failure, then go on
            self.failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
        else:
            self.passed += 1
            print(f"ok   {name}")


def expect(condition, what):
    if not condition:
        raise AssertionError(what)


def expect_raises(exc_type, body):
    try:
        body()
    except exc_type as e:
        return e
    except Exception as e:
        raise AssertionError(f"expected {exc_type.__qualname__}, got {type(e).__qualname__}: {e}")
    raise AssertionError(f"expected {exc_type.__qualname__}, nothing was raised")


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    base = argv[1].rstrip("/")
    with tempfile.TemporaryDirectory(prefix="wxpay-py-") as tmp:
        wx = import_binding(tmp)
        return run(wx, base)


def run(wx, base):
    with urllib.request.urlopen(f"{base}/sandbox/config", timeout=10) as reply:
        sandbox = json.load(reply)
    config = wx.Config(
        appid=sandbox["appid"],
        app_secret=sandbox["app_secret"],
        app_key=sandbox["app_key"],
        partner_id=sandbox["partner_id"],
        partner_key=sandbox["partner_key"],
        notify_url=sandbox["notify_url"],
        api_base=sandbox["api_base"],
        input_charset=sandbox.get("input_charset"),
    )
    client = wx.WxPayClient(config)
    r = Results()

    def order(no, total_fee=None, total_yuan=None):
        return wx.Order(out_trade_no=no, total_fee=total_fee, total_yuan=total_yuan,
                        body="支付测试", client_ip="196.168.1.1")

    def check_pay_params(p, no, fee):
        expect(p.appid == "wxd930ea5d5a258f4f", f"appid {p.appid}")
        expect(p.partnerid == "1900000109", f"partnerid {p.partnerid}")
        expect(p.package == "Sign=WXPay", f"package {p.package}")
        expect(re.fullmatch(r"[0-9]{10}", p.timestamp), f"timestamp {p.timestamp}")
        expect(re.fullmatch(r"[0-9a-f]{40}", p.sign), f"sign {p.sign}")
        expect(p.noncestr, "empty noncestr")
        expect(p.prepayid, "empty prepayid")
        expect(p.out_trade_no == no, f"out_trade_no {p.out_trade_no}")
        expect(p.total_fee == fee, f"total_fee {p.total_fee}")

    def with_config(**changes):
        return wx.Config(**{**vars(config), **changes})

    def yuan():
        check_pay_params(client.build_pay_params(order("PY-YUAN-1", total_yuan="19.99")), "PY-YUAN-1", 1999)

    def fen():
        check_pay_params(client.build_pay_params(order("PY-FEE-1", total_fee=1)), "PY-FEE-1", 1)

    def sub_fen():
        e = expect_raises(wx.WxPayError.InvalidOrder,
                          lambda: client.build_pay_params(order("PY-BAD-1", total_yuan="0.001")))
        expect(e.field == "total_yuan", f"field {e.field}")
        expect(e.message.startswith("invalid order: total_yuan"), f"message {e.message}")
        expect(isinstance(e, wx.WxPayError), "not a WxPayError")

    def zero():
        e = expect_raises(wx.WxPayError.InvalidOrder,
                          lambda: client.build_pay_params(order("PY-BAD-2", total_yuan="0")))
        expect(e.field == "total_yuan", f"field {e.field}")

    def bad_config():
        e = expect_raises(wx.WxPayError.InvalidConfig,
                          lambda: wx.WxPayClient(with_config(api_base="http://10.0.0.1")))
        expect(e.field == "api_base", f"field {e.field}")

    def gateway():
        wrong = wx.WxPayClient(with_config(app_secret="not-the-secret"))
        e = expect_raises(wx.WxPayError.Gateway,
                          lambda: wrong.build_pay_params(order("PY-GW-1", total_fee=1)))
        expect(e.errcode == 40001, f"errcode {e.errcode}")
        expect(e.errmsg, "empty errmsg")

    def network():
        down = wx.WxPayClient(with_config(api_base="http://127.0.0.1:1", timeout_ms=2000))
        expect_raises(wx.WxPayError.Network, lambda: down.build_pay_params(order("PY-NET-1", total_fee=1)))

    def threads():
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(
                lambda i: client.build_pay_params(order(f"PY-THREAD-{i}", total_fee=i)), range(1, 5)))
        for i, p in enumerate(results, start=1):
            check_pay_params(p, f"PY-THREAD-{i}", i)
        expect(len({p.prepayid for p in results}) == 4, "prepayids not distinct")

    def sign():
        params = {
            "bank_type": "WX", "body": "支付测试", "fee_type": "1", "input_charset": "UTF-8",
            "notify_url": "http://weixin.qq.com", "out_trade_no": "7240b65810859cbf2a8d9f76a638c0a3",
            "partner": "1900000109", "spbill_create_ip": "196.168.1.1", "total_fee": "1",
        }
        signature = wx.sign("legacy-package", "8934e7d15453e97507ef794cf7b0519d", params)
        expect(signature == "7F77B507B755B3262884291517E380F8", f"signature {signature}")
        expect_raises(wx.WxPayError.InvalidArgument, lambda: wx.sign("md5", "k", params))

    r.check("build_pay_params with total_yuan returns every field", yuan)
    r.check("build_pay_params with total_fee (optional fields left to their defaults)", fen)
    r.check("a sub-fen amount raises WxPayError.InvalidOrder naming total_yuan", sub_fen)
    r.check("a zero amount raises WxPayError.InvalidOrder", zero)
    r.check("a bad config raises WxPayError.InvalidConfig naming the field", bad_config)
    r.check("a gateway errcode reaches Python unchanged (WxPayError.Gateway)", gateway)
    r.check("an unreachable gateway raises WxPayError.Network", network)
    r.check("one client is shared by 4 threads", threads)
    r.check("sign() gives the public package vector; an unknown scheme raises InvalidArgument", sign)

    print(f"python: {r.passed} passed, {r.failed} failed")
    return 0 if r.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
