#!/usr/bin/env python3
"""Host test of the uniffi Python binding (bindings/python/wxpay.py) against a
running sandbox. It checks the glue (records in, records and exceptions out,
sharing across threads), not the signing logic again.

The 2014 flow uses the sandbox's `/sandbox/config`; API v2 its
`/sandbox/config?api=v2` with `notify_url` pointed at a small HTTP server in
this test, so the notifications the sandbox sends after `POST /sandbox/pay`
(and after a refund) are captured and verified through the binding. API v3
uses `/sandbox/config?api=v3` (public-key mode) the same way, capturing the
notification's Wechatpay-* headers with its body.

    python3 tests/bindings/test_wxpay.py http://127.0.0.1:PORT

The binding loads libwxpay.so from its own directory, so the test copies
bindings/python/wxpay.py and the library (target/debug/libwxpay.so, or
$WXPAY_LIB) into a temporary directory and imports it from there.
Prints one line per check and "python: N passed, M failed"; exits 1 on any
failure. Run by scripts/check-uniffi.sh.
"""

import base64
import concurrent.futures
import dataclasses
import http.server
import importlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
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


class NotifySink:
    """A merchant's notify_url on loopback: keeps every body POSTed to it and
    answers with `reply` (set it to the client's success reply, so the sandbox
    stops repeating)."""

    def __init__(self):
        self.bodies = []
        self.headers = []  # the headers of each body, in the same order
        self.reply = b""
        self._changed = threading.Condition()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink._changed:
                    sink.headers.append(dict(self.headers.items()))
                    sink.bodies.append(body)
                    sink._changed.notify_all()
                reply = sink.reply
                self.send_response(200)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/notify"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def wait_for(self, what, matches, timeout=10):
        """The first body for which `matches(body)` holds, waiting for it."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: next((b for b in self.bodies if matches(b)), None), timeout)
        if found is None:
            raise AssertionError(f"no {what} reached the notify_url within {timeout} s")
        return found

    def close(self):
        self._server.shutdown()
        self._server.server_close()


def post_json(url, document):
    request = urllib.request.Request(url, data=json.dumps(document).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.status


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

    sink = NotifySink()
    try:
        run_v2(wx, base, r, order, client, sink)
    finally:
        sink.close()
    sink = NotifySink()
    try:
        run_v3(wx, base, r, order, sink)
    finally:
        sink.close()

    print(f"python: {r.passed} passed, {r.failed} failed")
    return 0 if r.failed == 0 else 1


def run_v2(wx, base, r, order, legacy_client, sink):
    """API v2 through the binding, against the sandbox's v2 merchant."""
    with urllib.request.urlopen(f"{base}/sandbox/config?api=v2", timeout=10) as reply:
        v2 = json.load(reply)
    config = wx.Config(
        api=v2["api"],
        appid=v2["appid"],
        mch_id=v2["mch_id"],
        api_key=v2["api_key"],
        sign_type=v2.get("sign_type"),
        notify_url=sink.url,
        api_base=v2["api_base"],
    )
    client = wx.WxPayClient(config)
    sink.reply = client.notification_success_reply().encode()
    by_no = wx.OrderRef.OUT_TRADE_NO

    def pay_and_capture(no):
        """The user pays order `no`: the payment notification the sandbox sent."""
        expect(post_json(f"{base}/sandbox/pay", {"out_trade_no": no}) == 204, "sandbox/pay")
        marker = f"<out_trade_no><![CDATA[{no}]]></out_trade_no>".encode()
        return sink.wait_for(f"payment notification of {no}",
                             lambda b: marker in b and b"<req_info>" not in b)

    def pay_params():
        expect(v2["api"] == "v2" and v2.get("sign_type") == "MD5", f"sandbox v2 config {v2}")
        p = client.build_pay_params(order("PY-V2-PAY-1", total_yuan="19.99"))
        expect(p.partnerid == "10000100", f"partnerid {p.partnerid}")
        expect(re.fullmatch(r"[0-9A-F]{32}", p.sign), f"sign {p.sign}")
        expect(p.package == "Sign=WXPay", f"package {p.package}")
        expect(p.prepayid, "empty prepayid")
        expect((p.out_trade_no, p.total_fee) == ("PY-V2-PAY-1", 1999), f"order {p.out_trade_no} {p.total_fee}")

    def query_and_close():
        client.build_pay_params(order("PY-V2-CLOSE-1", total_fee=5))
        unpaid = client.query_order(by_no("PY-V2-CLOSE-1"))
        expect(unpaid.trade_state == wx.TradeState.NOTPAY(), f"trade state {unpaid.trade_state}")
        expect(unpaid.trade_state.is_NOTPAY(), "is_NOTPAY")
        expect(isinstance(unpaid.trade_state, wx.TradeState), "not a TradeState")
        expect((unpaid.out_trade_no, unpaid.total_fee, unpaid.transaction_id) == ("PY-V2-CLOSE-1", 5, None),
               f"status {unpaid}")
        expect(client.close_order("PY-V2-CLOSE-1") is None, "close_order returns None")
        closed = client.query_order(by_no("PY-V2-CLOSE-1"))
        expect(closed.trade_state == wx.TradeState.CLOSED(), f"trade state {closed.trade_state}")

    def refund_unpaid():
        client.build_pay_params(order("PY-V2-REFUND-1", total_fee=10))
        e = expect_raises(wx.WxPayError.Rejected, lambda: client.refund(wx.RefundRequest(
            order=by_no("PY-V2-REFUND-1"), out_refund_no="PY-R-1", total_fee=10, refund_fee=5)))
        expect(e.code == "TRADE_STATE_ERROR", f"code {e.code}")
        expect(e.description, "empty description")
        expect("TRADE_STATE_ERROR" in e.message, f"message {e.message}")

    def legacy_refuses_v2():
        e = expect_raises(wx.WxPayError.InvalidArgument,
                          lambda: legacy_client.query_order(by_no("PY-V2-CLOSE-1")))
        expect("legacy" in e.message, f"message {e.message}")

    def payment_notification():
        client.build_pay_params(order("PY-V2-NOTIFY-1", total_fee=1999))
        body = pay_and_capture("PY-V2-NOTIFY-1")
        n = client.verify_payment_notification(body, 1999)
        expect(n.paid, "not paid")
        expect((n.out_trade_no, n.total_fee) == ("PY-V2-NOTIFY-1", 1999), f"notification {n}")
        expect(n.transaction_id and n.fields["transaction_id"] == n.transaction_id, f"fields {n.fields}")
        expect(n.fields["mch_id"] == "10000100" and "sign" in n.fields, f"fields {n.fields}")
        expect(n.time_end and re.fullmatch(r"[0-9]{14}", n.time_end), f"time_end {n.time_end}")
        # Verified again (WeChat repeats notifications): the same result.
        expect(client.verify_payment_notification(body, None) == n, "not repeatable")

        tampered = body.replace(b"<total_fee><![CDATA[1999]]>", b"<total_fee><![CDATA[2999]]>")
        expect(tampered != body, "the amount was not found in the body")
        e = expect_raises(wx.WxPayError.InvalidNotification,
                          lambda: client.verify_payment_notification(tampered, None))
        expect("signature" in e.message, f"message {e.message}")
        expect_raises(wx.WxPayError.InvalidNotification,
                      lambda: client.verify_payment_notification(body, 1))
        expect_raises(wx.WxPayError.InvalidNotification,
                      lambda: client.verify_payment_notification(b"not xml", None))
        fail = client.notification_failure_reply(e.message)
        expect("FAIL" in fail and "signature" in fail, f"failure reply {fail}")

        paid = client.query_order(wx.OrderRef.TRANSACTION_ID(n.transaction_id))
        expect(paid.trade_state == wx.TradeState.SUCCESS(), f"trade state {paid.trade_state}")
        expect(paid.transaction_id == n.transaction_id, f"transaction_id {paid.transaction_id}")

    def refund_paid():
        client.build_pay_params(order("PY-V2-REFUND-2", total_fee=1999))
        pay_and_capture("PY-V2-REFUND-2")
        receipt = client.refund(wx.RefundRequest(order=by_no("PY-V2-REFUND-2"), out_refund_no="PY-R-2",
                                                 total_fee=1999, refund_fee=999, refund_desc="退一半"))
        expect((receipt.out_refund_no, receipt.refund_fee) == ("PY-R-2", 999), f"receipt {receipt}")
        expect(receipt.refund_id, "empty refund_id")
        refunds = client.query_refunds(by_no("PY-V2-REFUND-2"))
        expect([(s.out_refund_no, s.refund_id, s.refund_fee) for s in refunds]
               == [("PY-R-2", receipt.refund_id, 999)], f"refunds {refunds}")
        state = client.query_order(by_no("PY-V2-REFUND-2")).trade_state
        expect(state == wx.TradeState.REFUND(), f"trade state {state}")
        body = sink.wait_for("refund notification", lambda b: b"<req_info>" in b)
        n = client.verify_refund_notification(body, 999)
        expect((n.out_trade_no, n.out_refund_no, n.refund_id) == ("PY-V2-REFUND-2", "PY-R-2", receipt.refund_id),
               f"refund notification {n}")
        expect((n.total_fee, n.refund_fee, n.refund_status) == (1999, 999, "SUCCESS"), f"refund notification {n}")
        expect(n.fields["refund_id"] == receipt.refund_id, f"fields {n.fields}")
        expect_raises(wx.WxPayError.InvalidNotification, lambda: client.verify_refund_notification(body, 1))

    def bad_v2_config():
        e = expect_raises(wx.WxPayError.InvalidConfig,
                          lambda: wx.WxPayClient(wx.Config(**{**vars(config), "mch_id": None})))
        expect(e.field == "mch_id", f"field {e.field}")
        e = expect_raises(wx.WxPayError.InvalidConfig, lambda: wx.WxPayClient(wx.Config(
            **{**vars(config), "client_cert": wx.ClientCert(pkcs12_file="/nonexistent.p12",
                                                            pkcs12_password="10000100")})))
        expect(e.field == "client_cert.pkcs12_file", f"field {e.field}")

    r.check("v2: build_pay_params returns MD5-signed parameters for merchant 10000100", pay_params)
    r.check("v2: query_order gives TradeState.NOTPAY; after close_order, CLOSED", query_and_close)
    r.check("v2: a refund of an unpaid order raises WxPayError.Rejected with TRADE_STATE_ERROR", refund_unpaid)
    r.check("v2: a 2014-flow client refuses v2 operations with InvalidArgument", legacy_refuses_v2)
    r.check("v2: the payment notification the sandbox sends verifies; a tampered copy raises "
            "InvalidNotification", payment_notification)
    r.check("v2: refund a paid order, query its refunds, verify the refund notification", refund_paid)
    r.check("v2: a bad v2 config raises InvalidConfig naming the field", bad_v2_config)


def run_v3(wx, base, r, order, sink):
    """API v3 (public-key mode) through the binding, against the sandbox's
    v3 merchant; the notification is the one the sandbox POSTs, headers and
    body as received."""
    with urllib.request.urlopen(f"{base}/sandbox/config?api=v3", timeout=10) as reply:
        v3 = json.load(reply)
    config = wx.Config(
        api=v3["api"],
        appid=v3["appid"],
        mchid=v3["mchid"],
        merchant_private_key=v3["merchant_private_key"],
        merchant_serial_no=v3["merchant_serial_no"],
        api_v3_key=v3["api_v3_key"],
        wechatpay_public_key=v3["wechatpay_public_key"],
        wechatpay_public_key_id=v3["wechatpay_public_key_id"],
        notify_url=sink.url,
        api_base=v3["api_base"],
    )
    client = wx.WxPayClient(config)
    sink.reply = client.notification_success_reply().encode()  # empty: 200 with no body
    by_no = wx.OrderRef.OUT_TRADE_NO

    def pay_params():
        p = client.build_pay_params(order("PY-V3-PAY-1", total_fee=2999))
        expect(p.partnerid == "1900000109", f"partnerid {p.partnerid}")
        expect(len(base64.b64decode(p.sign, validate=True)) == 256, f"sign {p.sign}")
        expect(p.package == "Sign=WXPay", f"package {p.package}")

    def query_and_close():
        client.build_pay_params(order("PY-V3-CLOSE-1", total_fee=5))
        unpaid = client.query_order(by_no("PY-V3-CLOSE-1"))
        expect(unpaid.trade_state == wx.TradeState.NOTPAY(), f"trade state {unpaid.trade_state}")
        expect(client.close_order("PY-V3-CLOSE-1") is None, "close_order returns None")
        closed = client.query_order(by_no("PY-V3-CLOSE-1"))
        expect(closed.trade_state == wx.TradeState.CLOSED(), f"trade state {closed.trade_state}")
        e = expect_raises(wx.WxPayError.Rejected, lambda: client.query_order(by_no("PY-V3-NONE")))
        expect((e.code, e.http_status) == ("ORDER_NOT_EXIST", 404), f"rejected {e.code} {e.http_status}")

    def signed_notification():
        no = "PY-V3-NOTIFY-1"
        client.build_pay_params(order(no, total_fee=2999))
        expect(post_json(f"{base}/sandbox/pay", {"out_trade_no": no}) == 204, "sandbox/pay")
        body = sink.wait_for(f"v3 notification of {no}", lambda b: b"TRANSACTION.SUCCESS" in b)
        headers = sink.headers[sink.bodies.index(body)]
        n = client.verify_signed_notification(headers, body, 2999)
        expect(n.paid and (n.out_trade_no, n.total_fee) == (no, 2999), f"notification {n}")
        upper = {k.upper(): v for k, v in headers.items()}
        expect(client.verify_signed_notification(upper, body, None) == n, "header names in any case")

        document = json.loads(body)
        c = document["resource"]["ciphertext"]
        document["resource"]["ciphertext"] = ("B" if c[0] == "A" else "A") + c[1:]
        tampered = json.dumps(document).encode()
        e = expect_raises(wx.WxPayError.InvalidNotification,
                          lambda: client.verify_signed_notification(headers, tampered, None))
        expect("signature" in e.message, f"message {e.message}")
        expect_raises(wx.WxPayError.InvalidNotification,
                      lambda: client.verify_signed_notification(headers, body, 1))
        expect_raises(wx.WxPayError.InvalidNotification,
                      lambda: client.verify_signed_notification({}, body, None))
        fail = json.loads(client.notification_failure_reply("busy"))
        expect(fail == {"code": "FAIL", "message": "busy"}, f"failure reply {fail}")

    r.check("v3: build_pay_params returns RSA-signed (base64) parameters for mchid 1900000109", pay_params)
    r.check("v3: query_order gives NOTPAY; after close_order, CLOSED; unknown is Rejected 404",
            query_and_close)
    r.check("v3: the signed notification the sandbox sends verifies with its headers; a tampered "
            "copy raises InvalidNotification", signed_notification)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
