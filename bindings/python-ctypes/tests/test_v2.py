"""API v2 through wxpay_ctypes: query, close, refund, refund query and the
notification verifiers, against the sandbox. The notifications are the real
ones the sandbox sends to a notify_url served here (http.server), verified
by the merchant handler below and again by the tests, with tampered copies.
Glue only: the protocol's logic is tested in Rust."""

import http.server
import itertools
import threading
import time

import pytest

import wxpay_ctypes

_numbers = itertools.count(1)


def unique(prefix):
    return "{}{}T{}".format(prefix, next(_numbers), int(time.time() * 1000) % 10 ** 7)


class NotifyEndpoint:
    """A merchant's notify_url on loopback: records every body it receives
    and answers each with ``answer(body)`` (a merchant handler)."""

    def __init__(self):
        self.bodies = []
        self.answer = lambda body: "fail"
        self._cond = threading.Condition()
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with endpoint._cond:
                    endpoint.bodies.append(body)
                    endpoint._cond.notify_all()
                reply = endpoint.answer(body).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:{}/notify".format(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, predicate, timeout=15.0):
        """The first body received for which ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for body in self.bodies:
                    if predicate(body):
                        return body
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail("no matching notification within {} s".format(timeout))
                self._cond.wait(left)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    served = NotifyEndpoint()
    yield served
    served.close()


def merchant_handler(client):
    """What a merchant's notify_url handler does with wxpay_ctypes."""

    def answer(body):
        try:
            client.verify_payment_notification(body)
        except wxpay_ctypes.WxPayError:
            pass
        else:
            return client.notification_success_reply()
        try:
            client.verify_refund_notification(body)
        except wxpay_ctypes.WxPayError as error:
            return error.reply
        return client.notification_success_reply()

    return answer


@pytest.fixture
def v2_client(sandbox, endpoint):
    config = sandbox.config_v2()
    config["notify_url"] = endpoint.url
    with wxpay_ctypes.Client(config) as client:
        endpoint.answer = merchant_handler(client)
        yield client


def new_order(client, no, fee):
    return client.build_pay_params(
        {"out_trade_no": no, "total_fee": fee, "body": "支付测试", "client_ip": "196.168.1.1"}
    )


def tamper(body, old, new):
    assert old in body, body
    return body.replace(old, new, 1)


def test_the_life_cycle(sandbox, endpoint, v2_client):
    client = v2_client
    no = unique("PYV2")
    params = new_order(client, no, 1999)
    assert params["partnerid"] == sandbox.config_v2()["mch_id"]
    assert client.query_order(out_trade_no=no)["trade_state"] == "NOTPAY"

    sandbox.pay(no)
    body = endpoint.wait_for(lambda b: no.encode() in b)
    paid = client.verify_payment_notification(body, expected_total_fee=1999)
    assert paid["paid"] is True
    assert (paid["out_trade_no"], paid["total_fee"]) == (no, 1999)
    assert paid["fields"]["out_trade_no"] == no
    # A str body is the same body.
    assert client.verify_payment_notification(body.decode("utf-8")) == paid

    with pytest.raises(wxpay_ctypes.InvalidNotificationError) as info:
        client.verify_payment_notification(body, expected_total_fee=1998)
    assert info.value.code == wxpay_ctypes.WXPAY_ERR_INVALID_NOTIFICATION
    assert "<![CDATA[FAIL]]>" in info.value.reply
    forged = tamper(body, b"[1999]", b"[1998]")
    with pytest.raises(wxpay_ctypes.InvalidNotificationError) as info:
        client.verify_payment_notification(forged)
    assert "signature" in info.value.message
    assert info.value.reply.startswith("<xml><return_code><![CDATA[FAIL]]>")

    status = client.query_order(transaction_id=paid["transaction_id"])
    assert (status["trade_state"], status["total_fee"]) == ("SUCCESS", 1999)

    receipt = client.refund(
        out_trade_no=no, out_refund_no="R" + no, total_fee=1999, refund_fee=999,
        refund_desc="退一半",
    )
    assert (receipt["out_refund_no"], receipt["refund_fee"]) == ("R" + no, 999)
    refund_body = endpoint.wait_for(lambda b: b"req_info" in b)
    refunded = client.verify_refund_notification(refund_body, expected_refund_fee=999)
    assert (refunded["out_trade_no"], refunded["refund_id"]) == (no, receipt["refund_id"])
    with pytest.raises(wxpay_ctypes.InvalidNotificationError) as info:
        client.verify_refund_notification(refund_body, expected_refund_fee=998)
    assert "FAIL" in info.value.reply
    with pytest.raises(wxpay_ctypes.InvalidNotificationError):
        client.verify_refund_notification(tamper(refund_body, b"10000100", b"10000101"))

    refunds = client.query_refunds(out_trade_no=no)
    assert [(r["out_refund_no"], r["refund_fee"]) for r in refunds] == [("R" + no, 999)]
    with pytest.raises(wxpay_ctypes.RejectedError) as info:
        client.refund(out_trade_no=no, out_refund_no="R2" + no, total_fee=1999, refund_fee=1001)
    assert info.value.gateway_code == "NOTENOUGH"
    with pytest.raises(wxpay_ctypes.RejectedError) as info:
        client.close_order(no)
    assert info.value.gateway_code == "ORDERPAID"

    # The handler above acknowledged both notifications.
    deadline = time.monotonic() + 10
    while True:
        mine = [n for n in sandbox.notifications() if n["out_trade_no"] == no]
        done = len(mine) == 2 and all(n["acknowledged"] for n in mine)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sorted(n["kind"] for n in mine) == ["payment", "refund"]
    assert all(n["acknowledged"] for n in mine), mine


def test_unpaid_orders_close(v2_client):
    no = unique("PYCL")
    new_order(v2_client, no, 1)
    assert v2_client.close_order(no) is None
    assert v2_client.query_order(out_trade_no=no)["trade_state"] == "CLOSED"
    with pytest.raises(wxpay_ctypes.RejectedError) as info:
        v2_client.query_refunds(out_trade_no=no)
    assert info.value.gateway_code == "REFUNDNOTEXIST"


def test_arguments_are_checked_before_the_network(sandbox, v2_client):
    before = sandbox.stats()["requests"]
    with pytest.raises(wxpay_ctypes.InvalidArgumentError, match="out_trade_no or transaction_id"):
        v2_client.query_order()
    with pytest.raises(wxpay_ctypes.InvalidArgumentError, match="not both"):
        v2_client.query_refunds(out_trade_no="A", transaction_id="4200")
    with pytest.raises(wxpay_ctypes.InvalidArgumentError, match="out_trade_no"):
        v2_client.close_order("no spaces")
    with pytest.raises(wxpay_ctypes.InvalidArgumentError, match="larger than total_fee"):
        v2_client.refund(out_trade_no="A", out_refund_no="R", total_fee=1, refund_fee=2)
    with pytest.raises(wxpay_ctypes.InvalidArgumentError, match="total_fee"):
        v2_client.refund(out_trade_no="A", out_refund_no="R", total_fee=1.0, refund_fee=1)
    with pytest.raises(TypeError):
        v2_client.query_order(out_trade_no=5)
    with pytest.raises(TypeError):
        v2_client.refund(out_trade_no="A", total_fee=1, refund_fee=1)  # no out_refund_no
    assert sandbox.stats()["requests"] == before


def test_notification_arguments(v2_client):
    with pytest.raises(wxpay_ctypes.InvalidNotificationError) as info:
        v2_client.verify_payment_notification(b"<xml></xml>", expected_total_fee=1)
    assert info.value.reply.startswith("<xml><return_code><![CDATA[FAIL]]>")
    with pytest.raises(wxpay_ctypes.InvalidNotificationError):
        v2_client.verify_refund_notification(bytearray(b"<xml>\0</xml>"))
    # A body over the C API's limit is refused by the library, with a reply.
    with pytest.raises(wxpay_ctypes.InputTooLongError) as info:
        v2_client.verify_payment_notification(b"<" * (wxpay_ctypes.MAX_INPUT_BYTES + 1))
    assert "FAIL" in info.value.reply
    with pytest.raises(wxpay_ctypes.InvalidArgumentError) as info:
        v2_client.verify_payment_notification(b"<xml></xml>", expected_total_fee=2 ** 31)
    assert info.value.reply
    # 0 would silently mean "not checked" in C: refused here.
    for fee in (0, -1, 2 ** 63):
        with pytest.raises(wxpay_ctypes.InvalidArgumentError):
            v2_client.verify_payment_notification(b"<xml></xml>", expected_total_fee=fee)
    with pytest.raises(TypeError):
        v2_client.verify_payment_notification(b"<xml></xml>", expected_total_fee=True)
    with pytest.raises(TypeError):
        v2_client.verify_payment_notification(12345)
    with pytest.raises(wxpay_ctypes.InvalidUtf8Error):
        v2_client.verify_payment_notification("\ud800")

    success = v2_client.notification_success_reply()
    assert success.startswith("<xml><return_code><![CDATA[SUCCESS]]>")
    failure = v2_client.notification_failure_reply("数据库忙")
    assert "<![CDATA[FAIL]]>" in failure and "数据库忙" in failure
    with pytest.raises(wxpay_ctypes.InvalidArgumentError):
        v2_client.notification_failure_reply("a\0b")


def test_a_legacy_client_has_no_v2_operations(sandbox):
    with wxpay_ctypes.Client(sandbox.config()) as client:
        with pytest.raises(wxpay_ctypes.InvalidArgumentError, match="API v2"):
            client.query_order(out_trade_no="A")
        with pytest.raises(wxpay_ctypes.InvalidArgumentError, match="API v2"):
            client.verify_refund_notification(b"<xml></xml>")
        with pytest.raises(wxpay_ctypes.InvalidNotificationError) as info:
            client.verify_payment_notification(b"partner=1900000109")
        assert info.value.reply == "fail"
        assert client.notification_success_reply() == "success"


def test_a_closed_client_refuses_v2_calls(sandbox):
    client = wxpay_ctypes.Client(sandbox.config_v2())
    client.close()
    for call in (
        lambda: client.query_order(out_trade_no="A"),
        lambda: client.close_order("A"),
        lambda: client.verify_payment_notification(b""),
        client.notification_success_reply,
    ):
        with pytest.raises(ValueError, match="closed"):
            call()
