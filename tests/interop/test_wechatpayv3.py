"""Interoperability with wechatpayv3 2.0.x (API v3), a client nobody here wrote.

Its APP order runs against the libwxpay sandbox in public-key mode and in
certificate mode (where its constructor downloads the platform certificates):
the sandbox (libwxpay's verifier) accepts the Authorization wechatpayv3 signs,
and wechatpayv3's response verification accepts what the sandbox signs. Its
callback() also decrypts and verifies a notification the sandbox sent.
"""

import http.server
import json
import os
import subprocess
import tempfile
import threading
import urllib.request

import pytest
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.core import Core


def start_sandbox(wxpay_bin, account=None):
    args = [wxpay_bin, "sandbox", "--port", "0"]
    if account is not None:
        path = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump(account, path)
        path.close()
        args += ["--config", path.name]
    # Its log lines (WXPAY_LOG) go to this run's output.
    stderr = None if os.environ.get("WXPAY_LOG") else subprocess.DEVNULL
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, text=True)
    base = proc.stdout.readline().strip()
    assert base.startswith("http://127.0.0.1:"), base
    config = json.load(urllib.request.urlopen(base + "/sandbox/config?api=v3"))
    return proc, base, config


class Sink:
    """The merchant's notify_url: keeps each (headers, body), answers 204."""

    def __init__(self):
        self.received = []
        self.event = threading.Event()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                sink.received.append((dict(self.headers), self.rfile.read(length).decode()))
                self.send_response(204)
                self.end_headers()
                sink.event.set()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/notify" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def client(base, config, notify_url, public_key_mode):
    kwargs = dict(
        wechatpay_type=WeChatPayType.APP,
        mchid=config["mchid"],
        private_key=config["merchant_private_key"],
        cert_serial_no=config["merchant_serial_no"],
        apiv3_key=config["api_v3_key"],
        appid=config["appid"],
        notify_url=notify_url,
    )
    if public_key_mode:
        kwargs.update(public_key=config["wechatpay_public_key"],
                      public_key_id=config["wechatpay_public_key_id"])
        pay = WeChatPay(**kwargs)
        pay._core._gate_way = base
        return pay
    # Certificate mode: the constructor downloads the platform certificates,
    # so point the gateway at the sandbox before it does.
    real_init = Core._init_certificates
    Core._init_certificates = lambda self: None
    try:
        pay = WeChatPay(**kwargs)
    finally:
        Core._init_certificates = real_init
    pay._core._gate_way = base
    pay._core._init_certificates()
    return pay


@pytest.mark.parametrize("public_key_mode", [True, False], ids=["public-key", "certificate"])
def test_wechatpayv3_orders_from_the_sandbox(wxpay_bin, public_key_mode):
    account = None if public_key_mode else {"v3_certificate_mode": True}
    proc, base, config = start_sandbox(wxpay_bin, account)
    sink = Sink()
    try:
        assert ("wechatpay_public_key" in config) == public_key_mode
        pay = client(base, config, sink.url, public_key_mode)
        if not public_key_mode:
            assert len(pay._core._certificates) == 1
            stats = json.load(urllib.request.urlopen(base + "/sandbox/stats"))
            assert stats["certificate_downloads"] == 1

        no = "V3PY" + ("PK" if public_key_mode else "CERT")
        code, message = pay.pay(description="支付测试", out_trade_no=no, amount={"total": 29},
                                pay_type=WeChatPayType.APP)
        # 200 means: the sandbox verified wechatpayv3's signature, and
        # wechatpayv3 verified the sandbox's.
        assert code == 200, message
        assert json.loads(message)["prepay_id"].startswith("wx")

        code, message = pay.query(out_trade_no=no)
        assert code == 200, message
        assert json.loads(message)["trade_state"] == "NOTPAY"

        req = urllib.request.Request(base + "/sandbox/pay", method="POST",
                                     data=json.dumps({"out_trade_no": no}).encode(),
                                     headers={"Content-Type": "application/json"})
        assert urllib.request.urlopen(req).status == 204
        assert sink.event.wait(10), "no notification arrived"
        headers, body = sink.received[0]
        result = pay.callback(headers, body)
        assert result is not None, "wechatpayv3 refused the sandbox's notification"
        assert result["resource"]["out_trade_no"] == no
        assert result["resource"]["amount"]["total"] == 29
        assert result["resource"]["trade_state"] == "SUCCESS"
    finally:
        sink.server.shutdown()
        proc.kill()
        proc.wait()
