"""API v3 through wxpay_ctypes: pay parameters, query, close and refund
against the sandbox (public-key mode, the config of /sandbox/config?api=v3),
and the real encrypted, signed notification the sandbox POSTs to a
notify_url served here (http.server), verified with its Wechatpay-* headers
by the merchant handler and again by the test, with tampered copies.
Glue only: the protocol's logic is tested in Rust."""

import base64
import http.server
import json
import threading
import time

import pytest

import wxpay_ctypes

from test_v2 import unique


class SignedNotifyEndpoint:
    """A v3 merchant's notify_url on loopback: records every request
    (headers and body) and answers each as ``answer(headers, body)`` says:
    ``(status, reply)``."""

    def __init__(self):
        self.requests = []
        self.answer = lambda headers, body: (500, "")
        self._cond = threading.Condition()
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = dict(self.headers.items())
                status, reply = endpoint.answer(headers, body)
                with endpoint._cond:
                    endpoint.requests.append((headers, body, status))
                    endpoint._cond.notify_all()
                data = reply.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:{}/notify".format(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for_acknowledged(self, timeout=15.0):
        """The first request that was answered with a 2xx."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for headers, body, status in self.requests:
                    if 200 <= status < 300:
                        return headers, body
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail("no verified notification within {} s".format(timeout))
                self._cond.wait(left)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def merchant_handler(client, expected_total_fee):
    """What a v3 merchant's notify_url handler does with wxpay_ctypes."""

    def answer(headers, body):
        try:
            client.verify_signed_notification(headers, body, expected_total_fee)
        except wxpay_ctypes.WxPayError as error:
            return error.reply_status, error.reply
        return 204, client.notification_success_reply()

    return answer


@pytest.fixture
def signed_endpoint():
    served = SignedNotifyEndpoint()
    yield served
    served.close()


@pytest.fixture
def v3_client(sandbox, signed_endpoint):
    config = sandbox.request("GET", "/sandbox/config?api=v3")
    assert config["api"] == "v3" and "wechatpay_public_key" in config
    config["notify_url"] = signed_endpoint.url
    with wxpay_ctypes.Client(config) as client:
        signed_endpoint.answer = merchant_handler(client, 2999)
        yield client


def test_the_v3_life_cycle(sandbox, signed_endpoint, v3_client):
    client = v3_client
    no = unique("PYV3")
    params = client.build_pay_params(
        {"out_trade_no": no, "total_fee": 2999, "body": "支付测试", "client_ip": "196.168.1.1"}
    )
    assert params["partnerid"] == "1900000109"
    assert len(base64.b64decode(params["sign"], validate=True)) == 256  # RSA-2048
    assert client.query_order(out_trade_no=no)["trade_state"] == "NOTPAY"

    sandbox.pay(no)
    headers, body = signed_endpoint.wait_for_acknowledged()
    assert any(name.lower() == "wechatpay-signature" for name in headers)

    # The handler verified it; so does a second look, amount checked.
    paid = client.verify_signed_notification(headers, body, expected_total_fee=2999)
    assert paid["paid"] is True
    assert paid["out_trade_no"] == no
    assert paid["total_fee"] == 2999
    assert client.notification_success_reply() == ""
    # Header names in any case.
    upper = {name.upper(): value for name, value in headers.items()}
    assert client.verify_signed_notification(upper, body)["out_trade_no"] == no

    # A tampered body, a forged signature, another amount: refused, with
    # the v3 failure reply and status 500.
    document = json.loads(body)
    ciphertext = document["resource"]["ciphertext"]
    document["resource"]["ciphertext"] = ("B" if ciphertext[0] == "A" else "A") + ciphertext[1:]
    forged_headers = dict(headers)
    for name in forged_headers:
        if name.lower() == "wechatpay-signature":
            value = forged_headers[name]
            forged_headers[name] = ("B" if value[0] == "A" else "A") + value[1:]
    for what, h, b, fee in [
        ("tampered body", headers, json.dumps(document).encode("utf-8"), None),
        ("forged signature", forged_headers, body, None),
        ("another amount", headers, body, 2998),
        ("no headers", {}, body, None),
    ]:
        with pytest.raises(wxpay_ctypes.InvalidNotificationError) as refused:
            client.verify_signed_notification(h, b, fee)
        assert refused.value.reply_status == 500, what
        assert json.loads(refused.value.reply)["code"] == "FAIL", what
    with pytest.raises(wxpay_ctypes.InvalidArgumentError) as twice:
        client.verify_signed_notification({"Wechatpay-Nonce": "a", "wechatpay-nonce": "b"}, body)
    assert twice.value.reply_status == 500
    with pytest.raises(TypeError):
        client.verify_signed_notification({"Wechatpay-Timestamp": 1}, body)

    # Paid: queried by transaction id, refunded in part, not closable.
    status = client.query_order(transaction_id=paid["transaction_id"])
    assert status["trade_state"] == "SUCCESS"
    receipt = client.refund(
        out_trade_no=no, out_refund_no="R" + no, total_fee=2999, refund_fee=1000
    )
    assert receipt["refund_fee"] == 1000
    with pytest.raises(wxpay_ctypes.RejectedError) as rejected:
        client.close_order(no)
    assert rejected.value.gateway_code == "ORDER_PAID"
    assert rejected.value.http_status == 400


def test_unpaid_v3_orders_close(v3_client):
    no = unique("PYV3C")
    v3_client.build_pay_params(
        {"out_trade_no": no, "total_fee": 1, "body": "b", "client_ip": "1.2.3.4"}
    )
    v3_client.close_order(no)
    assert v3_client.query_order(out_trade_no=no)["trade_state"] == "CLOSED"
    with pytest.raises(wxpay_ctypes.RejectedError) as missing:
        v3_client.query_order(out_trade_no=unique("PYV3X"))
    assert missing.value.http_status == 404


def test_signed_notifications_are_v3_only(sandbox):
    with wxpay_ctypes.Client(sandbox.config_v2()) as v2:
        with pytest.raises(wxpay_ctypes.InvalidArgumentError) as refused:
            v2.verify_signed_notification({}, b"{}")
        assert refused.value.reply_status is None
        assert refused.value.reply.startswith("<xml>")
        with pytest.raises(wxpay_ctypes.InvalidArgumentError):
            v2.download_certificates()
