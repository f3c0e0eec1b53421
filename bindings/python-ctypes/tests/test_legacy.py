"""wxpay_ctypes.legacy.get_prepaid_result: the article's getPrePaidResult,
same arguments and answer, without its defects."""

import hashlib
import itertools
from decimal import Decimal

import pytest

from wxpay_ctypes import legacy

# Order numbers unique within the session: two random digits alone collide.
_numbers = itertools.count(1)

SUCCESS_KEYS = {
    "status", "retmsg", "appid", "noncestr", "package", "prepayid",
    "timestamp", "sign", "partnerId", "addtion",
}


@pytest.fixture(autouse=True)
def no_cached_clients():
    legacy.clear_cache()
    yield
    legacy.clear_cache()


def recorded_fee(sandbox, out_trade_no):
    fees = [o["total_fee"] for o in sandbox.orders() if o["out_trade_no"] == out_trade_no]
    assert len(fees) == 1, "order {} recorded {} times".format(out_trade_no, len(fees))
    return fees[0]


def test_success_shape_and_signature(fresh_sandbox):
    config = fresh_sandbox.config()
    result = legacy.get_prepaid_result(config, "A100", "0.29", "商品", "196.168.1.1")
    assert set(result) == SUCCESS_KEYS
    assert result["status"] == 0 and result["retmsg"] == "success"
    assert result["package"] == "Sign=WXPay"
    assert result["partnerId"] == config["partner_id"]
    assert result["appid"] == config["appid"]
    assert len(result["addtion"]) == 2 and 10 <= int(result["addtion"]) <= 99
    assert recorded_fee(fresh_sandbox, "A100" + result["addtion"]) == 29
    # The sign covers what the app will send (PROTOCOL.md 1.5).
    fields = {
        "appid": result["appid"], "appkey": config["app_key"], "noncestr": result["noncestr"],
        "package": result["package"], "partnerid": result["partnerId"],
        "prepayid": result["prepayid"], "timestamp": result["timestamp"],
    }
    text = "&".join("{}={}".format(k, fields[k]) for k in sorted(fields))
    assert result["sign"] == hashlib.sha1(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(
    "total_pay, fen",
    [
        (0.29, 29),  # int(0.29 * 100) == 28 in the article
        ("0.29", 29),
        (Decimal("0.29"), 29),
        (19.99, 1999),  # int(19.99 * 100) == 1998
        (8.2, 820),  # int(8.2 * 100) == 819
        (8, 800),
        ("8.20", 820),
        (Decimal("19.990"), 1999),
        (" 1 ", 100),
        (0.01, 1),
    ],
)
def test_amounts_are_exact(sandbox, total_pay, fen):
    order_no = "AMT{}".format(next(_numbers))
    result = legacy.get_prepaid_result(sandbox.config(), order_no, total_pay, "b", "1.2.3.4")
    assert result["status"] == 0, result
    assert recorded_fee(sandbox, order_no + result["addtion"]) == fen


@pytest.mark.parametrize(
    "total_pay",
    [0, -1, "0", "abc", "", 0.001, "0.001", Decimal("0.005"), float("nan"), float("inf"),
     "NaN", 0.1 + 0.2, 10 ** 30],
)
def test_bad_amounts_fail_without_an_order(sandbox, total_pay):
    before = sandbox.stats()["orders"]
    result = legacy.get_prepaid_result(sandbox.config(), "BAD", total_pay, "b", "1.2.3.4")
    assert result["status"] == -1
    assert set(result) == {"status", "retmsg"}
    assert result["retmsg"]
    assert sandbox.stats()["orders"] == before


@pytest.mark.parametrize("total_pay", [True, None, [1], b"1"])
def test_unsupported_amount_types_raise(sandbox, total_pay):
    with pytest.raises(TypeError):
        legacy.get_prepaid_result(sandbox.config(), "T", total_pay, "b", "1.2.3.4")


def test_token_is_fetched_once_across_calls(fresh_sandbox):
    config = fresh_sandbox.config()
    for i in range(5):
        result = legacy.get_prepaid_result(dict(config), "TOK{}".format(i), 1, "b", "1.2.3.4")
        assert result["status"] == 0, result
    stats = fresh_sandbox.stats()
    assert stats["orders"] == 5
    assert stats["token_fetches"] == 1


def test_gateway_failure_is_status_minus_one(fresh_sandbox):
    config = fresh_sandbox.config()
    fresh_sandbox.fault(
        {"endpoint": "genprepay", "action": {"errcode": {"errcode": 45009, "errmsg": "quota"}},
         "count": 1}
    )
    result = legacy.get_prepaid_result(config, "GW", "1", "b", "1.2.3.4")
    assert result["status"] == -1
    assert "45009" in result["retmsg"]
    assert legacy.get_prepaid_result(config, "GW", "1", "b", "1.2.3.4")["status"] == 0


def test_invalid_order_fields_are_status_minus_one(sandbox):
    result = legacy.get_prepaid_result(sandbox.config(), "A" * 31, "1", "b", "1.2.3.4")
    assert result["status"] == -1 and "out_trade_no" in result["retmsg"]
    result = legacy.get_prepaid_result(sandbox.config(), "IP", "1", "b", "::1")
    assert result["status"] == -1 and "client_ip" in result["retmsg"]


def test_invalid_config_raises():
    import wxpay_ctypes

    with pytest.raises(wxpay_ctypes.InvalidConfigError):
        legacy.get_prepaid_result({"appid": "wx"}, "A", "1", "b", "1.2.3.4")


def test_addtion_is_always_two_digits(monkeypatch):
    seen = {legacy.addtion() for _ in range(3000)}
    assert all(len(a) == 2 and a.isdigit() for a in seen)
    # The bounds themselves, whatever the random source gives.
    monkeypatch.setattr(legacy.secrets, "randbelow", lambda n: n - 1)
    assert legacy.addtion() == "99"
    monkeypatch.setattr(legacy.secrets, "randbelow", lambda n: 0)
    assert legacy.addtion() == "10"


def test_article_spelling_is_available():
    assert legacy.getPrePaidResult is legacy.get_prepaid_result
