"""The glue of wxpay_ctypes.Client and sign: values cross the C boundary,
failures become the right exception with the gateway's errcode, handles are
freed. The flow's logic is tested in Rust; this checks the wrapper."""

import hashlib
import threading

import pytest

import wxpay_ctypes


def order(no, **amount):
    fields = {"out_trade_no": no, "body": "支付测试", "client_ip": "196.168.1.1"}
    fields.update(amount or {"total_fee": 1})
    return fields


def test_version_is_the_crates():
    assert wxpay_ctypes.version().count(".") == 2


def test_build_pay_params(sandbox):
    with wxpay_ctypes.Client(sandbox.config()) as client:
        params = client.build_pay_params(order("PYOK1", total_yuan="19.99"))
    assert set(params) == {
        "appid", "partnerid", "prepayid", "package", "noncestr",
        "timestamp", "sign", "out_trade_no", "total_fee",
    }
    assert params["package"] == "Sign=WXPay"
    assert params["total_fee"] == 1999
    recorded = {o["prepayid"]: o for o in sandbox.orders()}
    assert recorded[params["prepayid"]]["total_fee"] == 1999
    assert recorded[params["prepayid"]]["body"] == "支付测试"


def test_config_as_json_text_and_close_semantics(sandbox):
    import json

    client = wxpay_ctypes.Client(json.dumps(sandbox.config()))
    assert "open" in repr(client) and "secret" not in repr(client).lower()
    client.close()
    client.close()  # twice is harmless
    assert client.closed
    with pytest.raises(ValueError, match="closed"):
        client.build_pay_params(order("PYCLOSED"))


def test_close_waits_for_a_call_in_progress(sandbox):
    client = wxpay_ctypes.Client(sandbox.config())
    client.build_pay_params(order("PYWAIT0"))  # the token is fetched
    sandbox.fault({"endpoint": "genprepay", "action": {"delay_ms": 300}, "count": 1})
    results = []
    worker = threading.Thread(
        target=lambda: results.append(client.build_pay_params(order("PYWAIT1"))))
    worker.start()
    while not client._busy and worker.is_alive():  # the call has the handle
        worker.join(0.001)
    client.close()
    # The call ended (with its answer) before the handle was freed.
    assert results and results[0]["out_trade_no"] == "PYWAIT1"
    assert client.closed
    worker.join()
    with pytest.raises(ValueError, match="closed"):
        client.build_pay_params(order("PYWAIT2"))


def test_invalid_config(sandbox):
    with pytest.raises(wxpay_ctypes.InvalidConfigError) as info:
        wxpay_ctypes.Client({"appid": "wx1"})
    error = info.value
    assert error.code == wxpay_ctypes.WXPAY_ERR_INVALID_CONFIG == 1102
    assert error.kind == "invalid_config"
    assert error.errcode is None and error.errmsg is None
    assert isinstance(error, ValueError)
    config = sandbox.config()
    config["api_base"] = "http://example.com"
    with pytest.raises(wxpay_ctypes.InvalidConfigError, match="api_base"):
        wxpay_ctypes.Client(config)
    with pytest.raises(TypeError):
        wxpay_ctypes.Client(["not", "a", "dict"])


@pytest.mark.parametrize(
    "amount, field",
    [
        ({"total_yuan": "0.001"}, "total_yuan"),
        ({"total_yuan": 0.29}, "total_yuan"),  # a float is refused, not rounded
        ({"total_fee": 0}, "total_fee"),
        ({"total_fee": "100"}, "total_fee"),
        ({"total_fee": 2 ** 40}, "total_fee"),
    ],
)
def test_invalid_orders(sandbox, amount, field):
    before = sandbox.stats()["requests"]
    with wxpay_ctypes.Client(sandbox.config()) as client:
        with pytest.raises(wxpay_ctypes.InvalidOrderError, match=field) as info:
            client.build_pay_params(order("PYBAD", **amount))
    assert info.value.code == wxpay_ctypes.WXPAY_ERR_INVALID_ORDER
    assert sandbox.stats()["requests"] == before, "an invalid order made a network call"


def test_nan_is_not_sent_as_json(sandbox):
    with wxpay_ctypes.Client(sandbox.config()) as client:
        with pytest.raises(ValueError):
            client.build_pay_params(order("PYNAN", total_fee=float("nan")))


def test_gateway_error_carries_errcode_and_errmsg(sandbox):
    with wxpay_ctypes.Client(sandbox.config()) as client:
        client.build_pay_params(order("PYGW0"))  # a token is cached now
        sandbox.fault(
            {"endpoint": "genprepay", "action": {"errcode": {"errcode": 45009, "errmsg": "quota"}},
             "count": 1}
        )
        with pytest.raises(wxpay_ctypes.GatewayError) as info:
            client.build_pay_params(order("PYGW1"))
        error = info.value
        assert (error.code, error.kind) == (wxpay_ctypes.WXPAY_ERR_GATEWAY, "gateway")
        assert (error.errcode, error.errmsg) == (45009, "quota")
        assert "45009" in error.message
        # The fault was for one call.
        assert client.build_pay_params(order("PYGW1"))["prepayid"]


def test_http_status_and_malformed_answers(sandbox):
    with wxpay_ctypes.Client(sandbox.config()) as client:
        sandbox.fault({"endpoint": "genprepay", "action": {"status": 503}, "count": 1})
        with pytest.raises(wxpay_ctypes.HttpStatusError) as info:
            client.build_pay_params(order("PYHTTP"))
        assert info.value.http_status == 503
        assert info.value.retryable is True
        assert info.value.errcode is None
        sandbox.fault({"endpoint": "genprepay", "action": "malformed_json", "count": 1})
        with pytest.raises(wxpay_ctypes.MalformedResponseError):
            client.build_pay_params(order("PYMAL"))


def test_network_error():
    config = {
        "appid": "wx1", "app_secret": "s", "app_key": "k", "partner_id": "1",
        "partner_key": "p", "notify_url": "https://example.com/notify",
        "api_base": "http://127.0.0.1:1", "timeout_ms": 3000,
    }
    with wxpay_ctypes.Client(config) as client:
        with pytest.raises(wxpay_ctypes.NetworkError) as info:
            client.build_pay_params(order("PYNET"))
    assert info.value.retryable is True


def test_one_client_many_threads_one_token(fresh_sandbox):
    results, errors = [], []
    with wxpay_ctypes.Client(fresh_sandbox.config()) as client:
        def work(t):
            try:
                for i in range(3):
                    results.append(client.build_pay_params(order("PYT{}N{}".format(t, i))))
            except Exception as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    assert len({p["prepayid"] for p in results}) == 18
    stats = fresh_sandbox.stats()
    assert stats["orders"] == 18
    assert stats["token_fetches"] == 1


PUBLIC_PACKAGE = {
    "bank_type": "WX", "body": "支付测试", "fee_type": "1", "input_charset": "UTF-8",
    "notify_url": "http://weixin.qq.com", "out_trade_no": "7240b65810859cbf2a8d9f76a638c0a3",
    "partner": "1900000109", "spbill_create_ip": "196.168.1.1", "total_fee": "1",
}


def test_sign_vectors():
    assert (
        wxpay_ctypes.sign("legacy-package", "8934e7d15453e97507ef794cf7b0519d", PUBLIC_PACKAGE)
        == "7F77B507B755B3262884291517E380F8"
    )
    expected = hashlib.sha1(b"appid=wx1&appkey=K&noncestr=n&timestamp=1399514976").hexdigest()
    assert wxpay_ctypes.sign(
        "legacy-sha1", "K", {"noncestr": "n", "appid": "wx1", "timestamp": 1399514976}
    ) == expected


@pytest.mark.parametrize(
    "scheme, key, params, error",
    [
        ("md5", "K", {"a": "1"}, wxpay_ctypes.InvalidArgumentError),
        ("legacy-sha1", "", {"a": "1"}, wxpay_ctypes.InvalidArgumentError),
        ("legacy-sha1", "K", {"a": {"b": "c"}}, wxpay_ctypes.InvalidArgumentError),
        ("legacy-sha1", "K", {"a": 1.5}, wxpay_ctypes.InvalidArgumentError),
        ("legacy-sha1", "K", "{", wxpay_ctypes.InvalidJsonError),
        ("legacy-sha1", "K\0X", {"a": "1"}, wxpay_ctypes.InvalidArgumentError),
        ("legacy-sha1", "K\ud800", {"a": "1"}, wxpay_ctypes.InvalidUtf8Error),
        ("legacy-sha1", "K" * (wxpay_ctypes.MAX_INPUT_BYTES + 1), {}, wxpay_ctypes.InputTooLongError),
    ],
)
def test_sign_errors(scheme, key, params, error):
    with pytest.raises(error) as info:
        wxpay_ctypes.sign(scheme, key, params)
    assert info.value.code == error.code
    assert "K" * 8 not in info.value.message  # the key is never echoed


def test_the_library_itself_refuses_huge_inputs():
    # The wrapper refuses above MAX_INPUT_BYTES on its own; straight through
    # ctypes, the library does too (and reads no further than the limit).
    from wxpay_ctypes import _native

    huge = b"x" * (16 << 20)
    with pytest.raises(wxpay_ctypes.InputTooLongError) as info:
        _native.call(_native.lib().wxpay_sign, b"legacy-sha1", b"K", huge)
    assert "params_json" in info.value.message
    with pytest.raises(TypeError):
        wxpay_ctypes.sign("legacy-sha1", b"K", {})


def test_errors_for_unknown_codes_are_plain_wxpay_errors():
    error = wxpay_ctypes.errors.error_from(31337, None)
    assert type(error) is wxpay_ctypes.WxPayError
    assert error.code == 31337
    error = wxpay_ctypes.errors.error_from(1203, '{"code":1203,"kind":"gateway","message":"m","errcode":-1,"errmsg":"busy","retryable":true}')
    assert isinstance(error, wxpay_ctypes.GatewayError)
    assert (error.errcode, error.errmsg, error.retryable) == (-1, "busy", True)


def test_rejections_carry_the_gateway_code():
    error = wxpay_ctypes.errors.error_from(
        1206,
        '{"code":1206,"kind":"rejected","message":"gateway refused the request: ORDERPAID: paid",'
        '"gateway_code":"ORDERPAID","gateway_message":"paid","retryable":false}',
    )
    assert isinstance(error, wxpay_ctypes.RejectedError)
    assert (error.gateway_code, error.gateway_message) == ("ORDERPAID", "paid")
    assert error.errcode is None
