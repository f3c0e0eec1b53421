"""Interoperability with wechatpy 1.8.18, a WeChat Pay client nobody here wrote.

(a) libwxpay's v2 signatures (through the C ABI) equal wechatpy's
    calculate_signature / calculate_signature_hmac on generated parameter sets;
(b) wechatpy's WeChatPay, pointed at the libwxpay sandbox, creates an APP
    order, and libwxpay verifies the app parameters wechatpy signs;
(c) wechatpy's parse_payment_result accepts a notification the sandbox sent.

Run by scripts/check-interop.sh, which makes the virtualenv.
"""

import http.server
import json
import os
import random
import subprocess
import threading
import urllib.request

import pytest
import wxpay_ctypes
from wechatpy.pay import WeChatPay
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac

ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    " _-.~!@#$%^*()+=[]{}|;:,/?`'\"\\<>"
    "支付测试微信商户订单退款￥。，、"
)


def random_params(rng):
    keys = rng.sample(
        ["appid", "mch_id", "nonce_str", "body", "attach", "out_trade_no", "total_fee",
         "spbill_create_ip", "notify_url", "trade_type", "device_info", "detail",
         "fee_type", "goods_tag", "limit_pay", "openid", "product_id", "time_start",
         "Zeta", "a1", "b_2", "MixedCase"],
        rng.randint(1, 12),
    )
    params = {}
    for key in keys:
        length = rng.randint(0, 40)
        params[key] = "".join(rng.choice(ALPHABET) for _ in range(length))
    return params


def test_signatures_match_wechatpy():
    rng = random.Random(20141030)
    for _ in range(300):
        params = random_params(rng)
        key = "".join(rng.choice("abcdef0123456789") for _ in range(32))
        assert wxpay_ctypes.sign("v2-md5", key, params) == calculate_signature(params, key), params
        assert wxpay_ctypes.sign("v2-hmac-sha256", key, params) == calculate_signature_hmac(params, key), params


@pytest.fixture(scope="module")
def sandbox(wxpay_bin):
    # Its log lines (WXPAY_LOG) go to this run's output.
    proc = subprocess.Popen([wxpay_bin, "sandbox", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=None if os.environ.get("WXPAY_LOG") else subprocess.DEVNULL,
                            text=True)
    base = proc.stdout.readline().strip()
    assert base.startswith("http://127.0.0.1:"), base
    config = json.load(urllib.request.urlopen(base + "/sandbox/config?api=v2"))
    yield base, config
    proc.kill()
    proc.wait()


class NotificationSink:
    """The merchant's notify_url: keeps each body, answers SUCCESS."""

    def __init__(self):
        self.bodies = []
        self.received = threading.Event()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                sink.bodies.append(self.rfile.read(length))
                reply = b"<xml><return_code><![CDATA[SUCCESS]]></return_code></xml>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
                sink.received.set()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/notify" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_wechatpy_orders_from_the_sandbox_and_accepts_its_notification(sandbox):
    base, config = sandbox
    pay = WeChatPay(appid=config["appid"], api_key=config["api_key"], mch_id=config["mch_id"])
    pay.API_BASE_URL = base + "/"
    sink = NotificationSink()
    try:
        order = pay.order.create(trade_type="APP", body="支付测试", total_fee=29,
                                 notify_url=sink.url, client_ip="196.168.1.1",
                                 out_trade_no="WECHATPY1")
        # wechatpy checked return_code/result_code; check the answer's signature too.
        assert pay.check_signature(dict(order))
        prepay_id = order["prepay_id"]

        # (b) the app parameters wechatpy signs verify with libwxpay.
        app = pay.order.get_appapi_params(prepay_id)
        assert app["prepayid"] == prepay_id and app["partnerid"] == config["mch_id"]
        unsigned = {k: v for k, v in app.items() if k != "sign"}
        assert wxpay_ctypes.sign("v2-md5", config["api_key"], unsigned) == app["sign"]

        # (c) the sandbox's payment notification passes wechatpy's check.
        req = urllib.request.Request(base + "/sandbox/pay", method="POST",
                                     data=json.dumps({"out_trade_no": "WECHATPY1"}).encode(),
                                     headers={"Content-Type": "application/json"})
        assert urllib.request.urlopen(req).status == 204
        assert sink.received.wait(10), "no notification arrived"
        result = pay.parse_payment_result(sink.bodies[0])
        assert result["out_trade_no"] == "WECHATPY1"
        assert result["total_fee"] == 29
        assert result["result_code"] == "SUCCESS"

        # And wechatpy's order query reads the paid state from the sandbox.
        queried = pay.order.query(out_trade_no="WECHATPY1")
        assert queried["trade_state"] == "SUCCESS"
    finally:
        sink.close()
