#!/usr/bin/env python3
"""Generated malformed calls to every method and function of the uniffi Python
binding (bindings/python/wxpay.py) against a running sandbox: at least 10,000
per method and function. Each call must raise an exception with a non-empty
message, never crash and never return:

- most reach the library, which must raise its ``WxPayError`` (never
  ``Internal``, a caught panic, and never a variant that only a gateway's
  answer can cause: the clients have the sandbox as their gateway, and its
  count of accepted connections must not move);
- the rest are refused by the binding before the call, as uniffi does with
  values its types cannot carry (an int out of ``u32``/``u64`` range, a float
  or a str for an int, a lone surrogate in a str, a wrong record type, an
  extra argument): counted apart, as "refused by the binding".

Each malformed call is a valid record (checked to be accepted first) with one
or more mutations, each of which alone makes it invalid: missing or empty
required fields, another API generation, bad URLs, keys and enums, embedded
NULs where a value is checked, over-long values (a handful of 16 MiB), every
kind of bad amount (0, above 2^31-1, out of the integer type's range,
negative, floats, strings, booleans), malformed XML and JSON notification
bodies, changed signed headers and bodies, refused identifiers, clients of
the wrong generation, and lone surrogates.

    python3 tests/bindings/test_malformed_uniffi.py http://127.0.0.1:PORT

The binding is loaded as tests/bindings/test_wxpay.py loads it (a copy with
the library beside it). The generator is seeded (WXPAY_MALFORMED_SEED; the
seed is printed). Prints one line per method with its counts, the first wrong
calls with what was generated (never the input itself: it holds keys), and
last "uniffi-malformed: N passed, M failed"; exits 1 on any failure. Run by
scripts/check-uniffi.sh.
"""

import json
import os
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The generator, the valid data and the mutations this test shares with the
# ctypes package's (bindings/python-ctypes/tests/test_malformed.py).
from malformed_support import (  # noqa: E402
    BAD_API, BAD_API_BASE, BAD_API_V3_KEY, BAD_NON_EMPTY, BAD_PEM, CALLS, HUGE, REFUND_FEE, SEED,
    SIGN_SCHEMES, SIGNED_HEADERS, TRANSACTION_ID, V3_ORDER_FEE, NotificationCatcher, changed_fields,
    log_length, not_flat_message, other_fields_message, padded_message, payment_fields,
    refund_note_fields, rng, signed, spoiled_field, valid_orders, with_byte_changed, xml)
from test_wxpay import import_binding  # noqa: E402

# Strings and byte strings above a mebibyte, per method: the first of 16 MiB.
# (A debug build lifts a byte string one byte at a time: about a second each.)
HUGE_PER_METHOD = 2
SLOW_PER_METHOD = 10
# What the binding raises for a value its types cannot carry.
BINDING_ERRORS = (TypeError, ValueError, UnicodeEncodeError, AttributeError)
def surrogate(text=""):
    """``text`` with a lone surrogate in it (uniffi cannot encode it)."""
    at = rng.randint(0, len(text))
    return text[:at] + rng.choice(["\ud800", "\udfff", "\udc80"]) + text[at:]


def binding_refused_int():
    """An int argument the binding refuses: out of range, or not an int."""
    return rng.choice([-1, -rng.randint(2, 2 ** 63), 2 ** 32, rng.randint(2 ** 32, 2 ** 70), 2 ** 64,
                       1.5, 0.01, 1e2, float("nan"), "100", "1", b"1", [1], {"fen": 1}])


class Tally:
    """One method's calls: reached the library, refused by the binding, wrong."""

    def __init__(self, name, binding_only=False):
        self.name, self.binding_only = name, binding_only
        self.calls = self.library = self.binding = 0
        self.wrong = []
        self.huge = self.slow = 0

    def next_huge(self):
        """A length above a mebibyte while the handful lasts, else None."""
        if self.huge >= HUGE_PER_METHOD:
            return None
        self.huge += 1
        return HUGE if self.huge == 1 else log_length((1 << 20) + 1, HUGE)

    def call(self, wx, what, body):
        self.calls += 1
        try:
            body()
        except wx.WxPayError as e:
            self.library += 1
            message = getattr(e, "message", "") or str(e)
            variant = type(e).__name__
            if variant in ("Internal", "Network", "HttpStatus", "Gateway", "MalformedResponse",
                           "TokenStore", "Rejected"):
                self.fail(what, "raised WxPayError.{}: {}".format(variant, message[:300]))
            elif not message:
                self.fail(what, "raised WxPayError.{} without a message".format(variant))
        except BINDING_ERRORS as e:
            self.binding += 1
            if not str(e):
                self.fail(what, "{} without a message".format(type(e).__name__))
        except Exception as e:  # noqa: BLE001 - anything else is a wrong answer
            self.fail(what, "raised {}: {}".format(type(e).__name__, str(e)[:300]))
        else:
            self.fail(what, "returned")

    def fail(self, what, detail):
        self.wrong.append("call {} [{}]: {}".format(self.calls, what, detail))

    def report(self):
        """Prints the counts; True when the method passed."""
        ok = not self.wrong and self.calls >= CALLS
        # Most calls must reach the library, except for the methods whose
        # every argument the library takes (the binding refuses the rest).
        if not self.binding_only and self.library < self.calls * 0.7:
            ok = False
            self.wrong.append("only {} of {} calls reached the library".format(self.library, self.calls))
        print("uniffi: {}: {} calls ({} reached the library, {} refused by the binding), {} wrong".format(
            self.name, self.calls, self.library, self.binding, len(self.wrong)))
        for line in self.wrong[:6]:
            print("  WRONG " + line)
        return ok


# ---------------------------------------------------------------- records

def config_of(wx, settings):
    fields = {k: v for k, v in settings.items() if k in wx.Config.__init__.__code__.co_varnames}
    return wx.Config(**fields)


def replaced(record, **changes):
    return type(record)(**{**vars(record), **changes})


BAD_ID = ["", "A B", "A.B", "A/B", "A\u0000", "A\u0000B", "订单", "A+B", "A#1", "A%20", "A\n", "Å"]
# Config fields: (generations it is required in, refused values, slow).
CONFIG_FIELDS = {
    "appid": (("legacy", "v2", "v3"), BAD_NON_EMPTY, False),
    "notify_url": (("legacy", "v2", "v3"), ["", "not a url", "ftp://example.com/n", "//example.com/n",
                                           "https://exa mple.com/", "https://exa\u0000mple.com/"], False),
    "api_base": ((), BAD_API_BASE, False),
    "timeout_ms": ((), [0, 300001, 2 ** 64 - 1], False),
    "app_secret": (("legacy",), [""], False),
    "app_key": (("legacy",), [""], False),
    "partner_id": (("legacy",), BAD_NON_EMPTY, False),
    "partner_key": (("legacy",), [""], False),
    "input_charset": ((), ["latin1", "utf8", "", "GBK\u0000"], False),
    "token_store": ((), ["memcached://127.0.0.1", "", "redis:/x"], False),
    "api": (("v2", "v3"), BAD_API, False),
    "mch_id": (("v2",), BAD_NON_EMPTY, False),
    "api_key": (("v2",), [""], False),
    "sign_type": ((), ["SHA1", "md5", "", "HMAC_SHA256", "MD5\u0000"], False),
    "mchid": (("v3",), BAD_NON_EMPTY, True),
    "merchant_private_key": (("v3",), BAD_PEM, False),
    "merchant_serial_no": (("v3",), BAD_NON_EMPTY, True),
    "api_v3_key": (("v3",), BAD_API_V3_KEY, True),
    "wechatpay_public_key": ((), BAD_PEM, True),
    "wechatpay_public_key_id": (("v3",), BAD_NON_EMPTY, True),
}


def malformed_config(wx, w, tally, what):
    """A Config record that is certainly refused (or that the binding refuses)."""
    generation = rng.choice(["legacy", "v2", "v3"])
    base = w.configs[generation]
    what.append(generation)
    changes = {}
    slow_ok = tally.slow < SLOW_PER_METHOD and generation == "v3"
    kind = rng.randrange(100)
    if kind < 8:  # refused by the binding
        field = rng.choice(["appid", "notify_url", "api_base", "timeout_ms", "mch_id"])
        if field == "timeout_ms":
            changes[field] = binding_refused_int()
        else:
            changes[field] = rng.choice([None if field in ("appid", "notify_url") else 5,
                                         surrogate(getattr(base, field) or ""), 12, b"x"])
        what.append(field + " of a type the binding refuses")
        return lambda: wx.WxPayClient(replaced(base, **changes))
    if kind < 14:
        changes["api"] = rng.choice([g for g in (None, "v2", "v3") if g != base.api])
        what.append("another generation")
    elif kind < 18:
        if tally.huge < HUGE_PER_METHOD and rng.random() < 0.3:
            length = tally.next_huge()
        else:
            length = 256 + log_length(0, 1 << 16)
        changes["notify_url"] = "https://example.com/" + "n" * length
        what.append("notify_url of {} bytes".format(length + 20))
    elif kind < 22 and generation == "v3":
        if rng.random() < 0.5:
            changes["merchant_private_key_file"] = "/nonexistent/wxpay-malformed/apiclient_key.pem"
        else:
            changes.update(merchant_private_key=None,
                           merchant_private_key_file=rng.choice(["/nonexistent/key.pem", "/"]))
        what.append("the merchant key as a file")
    elif kind < 22 and generation == "v2":
        changes["client_cert"] = rng.choice([
            wx.ClientCert(pem="not a certificate"), wx.ClientCert(),
            wx.ClientCert(pkcs12_file="/nonexistent/apiclient_cert.p12", pkcs12_password="10000100"),
            wx.ClientCert(cert_pem_file="/nonexistent/apiclient_cert.pem")])
        what.append("an unusable client_cert")
    else:
        for _ in range(rng.randint(1, 3)):
            field = rng.choice(list(CONFIG_FIELDS))
            required, bad, slow = CONFIG_FIELDS[field]
            if field in changes or (slow and not slow_ok) or (field == "wechatpay_public_key"
                                                              and generation != "v3"):
                continue
            if generation in required and rng.random() < 0.3 and field not in ("appid", "notify_url"):
                changes[field] = None
                what.append(field + " missing")
            elif generation in required or not required:
                changes[field] = rng.choice(bad)
                what.append(field + " refused")
            else:
                continue
            tally.slow += slow
        if not changes:
            changes["appid"] = ""
            what.append("appid empty")
    if rng.random() < 0.1:
        field = rng.choice([k for k, v in changes.items() if isinstance(v, str)] or ["appid"])
        changes.setdefault(field, getattr(base, field))
        changes[field] = surrogate(changes[field] or "")
        what.append("a lone surrogate in " + field)
    return lambda: wx.WxPayClient(replaced(base, **changes))


def bad_fee(wx_refuses_zero=True):
    """An amount of fen the library refuses, or one the binding refuses."""
    return rng.choice([
        lambda: 0, lambda: False,
        lambda: rng.randint(2 ** 31, 2 ** 32 - 1), lambda: 2 ** 31, lambda: 2 ** 32 - 1,
        binding_refused_int,
    ])()


def bad_yuan():
    return rng.choice([
        "0", "0.00", "-0", "-1", "-0.01", "0.001", "1.234", "21474836.48", "99999999999999999999",
        "NaN", "inf", "Infinity", "1e2", "+1", "1,00", "0x10", "", "   ", "1.2.3", "abc", ".", "1.",
        "１", "1\u0000", "{}.{:02d}{}".format(rng.randint(0, 999), rng.randint(0, 99), rng.randint(1, 9)),
        "{}.{:02d}".format(rng.randint(21474837, 10 ** 12), rng.randint(0, 99))])


ORDER_BAD = {
    "out_trade_no": lambda t: bad_id(t),
    "total_fee": lambda t: bad_fee(),
    "total_yuan": lambda t: bad_yuan(),
    "body": lambda t: rng.choice(["", "a\u0001b", "line\nbreak", "del\u007f", "nul\u0000", "\u0085",
                                  "b" * rng.randint(129, 300), "支" * 43, "b" * log_length(129, 1 << 16)]),
    "client_ip": lambda t: rng.choice(["", "::1", "256.1.1.1", "1.2.3", "1.2.3.4.5", "localhost",
                                       " 1.2.3.4", "01.2.3.4", "1.2.3.4\u0000"]),
    "attach": lambda t: rng.choice(["a\u0001", "\u0000", "a" * rng.randint(128, 1000)]),
    "expire_minutes": lambda t: rng.choice([0, 1, 4, 10081, 2 ** 32 - 1, rng.randint(10081, 2 ** 32 - 1)]),
    "traceid": lambda t: rng.choice(["", "a b", "\u00e9", "a\u0001", "\u0000", "t" * rng.randint(65, 200)]),
}


def malformed_order(wx, w, tally, what):
    base = rng.choice(w.orders)
    changes = {}
    kind = rng.randrange(100)
    if kind < 8:
        field = rng.choice(["total_fee", "expire_minutes", "out_trade_no", "body"])
        changes[field] = binding_refused_int() if field in ("total_fee", "expire_minutes") else \
            rng.choice([None, 5, surrogate(getattr(base, field))])
        what.append(field + " of a type the binding refuses")
    elif kind < 16:
        changes.update(total_fee=None, total_yuan=None) if rng.random() < 0.5 else changes.update(
            total_fee=rng.randint(1, 100), total_yuan="0.01")
        what.append("no amount, or both")
    else:
        for field in rng.sample(list(ORDER_BAD), rng.randint(1, 3)):
            if field in ("total_fee", "total_yuan"):
                other = "total_yuan" if field == "total_fee" else "total_fee"
                changes[field] = ORDER_BAD[field](tally)
                changes.setdefault(other, None)
            else:
                changes[field] = ORDER_BAD[field](tally)
            what.append(field + " refused")
    client = w.clients[rng.choice(["legacy", "v2", "v3"])]
    order = replaced(base, **changes)
    return lambda: client.build_pay_params(order)


def bad_id(tally):
    huge = tally.next_huge() if rng.random() < 0.01 else None
    return "A" * huge if huge else rng.choice(
        BAD_ID + ["A" * rng.randint(33, 64), "4" * rng.randint(33, 64), "A" * log_length(33, 1 << 16),
                  '{"out_trade_no":"A1"}', surrogate("A1")])


def order_ref(wx, identifier):
    return rng.choice([wx.OrderRef.OUT_TRADE_NO, wx.OrderRef.TRANSACTION_ID])(identifier)


def malformed_ref_call(wx, w, tally, what, method, clients, wrong_clients):
    kind = rng.randrange(100)
    if kind < 10:
        client = w.clients[rng.choice(wrong_clients)]
        what.append("a valid reference, a client of another generation")
        return lambda: getattr(client, method)(rng.choice(w.refs))
    if kind < 14:
        what.append("not an OrderRef")
        return lambda: getattr(w.clients[rng.choice(clients)], method)(
            rng.choice(["A1", None, 1, {"out_trade_no": "A1"}, b"A1"]))
    identifier = bad_id(tally)
    what.append("a refused identifier of {} characters".format(len(identifier)))
    client = w.clients[rng.choice(clients)]
    reference = order_ref(wx, identifier)
    return lambda: getattr(client, method)(reference)


def malformed_refund(wx, w, tally, what):
    base = rng.choice(w.refunds)
    changes = {}
    kind = rng.randrange(100)
    if kind < 8:
        changes[rng.choice(["total_fee", "refund_fee"])] = rng.choice([None, binding_refused_int()])
        what.append("an amount the binding refuses")
    elif kind < 14:
        client = w.clients["legacy"]
        what.append("a valid refund, a 2014-flow client")
        return lambda: client.refund(base)
    else:
        for how in rng.sample(["order", "out_refund_no", "total_fee", "refund_fee", "above",
                               "refund_desc"], rng.randint(1, 2)):
            if how == "refund_desc":  # at most 80 characters
                changes["refund_desc"] = rng.choice(["退", "x"]) * rng.choice(
                    [81, rng.randint(82, 200), log_length(81, 1 << 16)])
            elif how == "order":
                changes["order"] = order_ref(wx, bad_id(tally))
            elif how == "out_refund_no":
                changes["out_refund_no"] = rng.choice(
                    ["", "R 1", "退款", "R\u0000", "R/1", "R.1", "R" * rng.randint(65, 300)])
            elif how in ("total_fee", "refund_fee"):
                changes[how] = rng.choice([0, False, 2 ** 31, rng.randint(2 ** 31, 2 ** 32 - 1)])
            elif "total_fee" not in changes and "refund_fee" not in changes:
                total = rng.randint(1, 2 ** 31 - 2)
                changes.update(total_fee=total, refund_fee=rng.randint(total + 1, 2 ** 31 - 1))
            else:
                continue
            what.append(how + " refused")
        if not changes:
            changes["out_refund_no"] = ""
    client = w.clients[rng.choice(["v2", "v3"])]
    refund = replaced(base, **changes)
    return lambda: client.refund(refund)


# ---------------------------------------------------------------- notifications

# A payment notification's total_fee that is not an amount.
BAD_TOTAL_FEES = ["0", "-1", "01", "1.5", "1e2", "", " 1", "+1", "abc", "2147483648", "99999999999", "１"]


def malformed_body(wx, base, payment, what):
    """A malformed v2 notification body made from ``base`` (fields)."""
    kind = rng.randrange(100)
    if kind < 40:
        body, how, _, resign = changed_fields(base, payment, BAD_TOTAL_FEES, wx.sign)
        what.append("fields changed ({}{})".format(how, ", signed again" if resign else ""))
        return body
    if kind < 55:
        def spoil(key, data):
            at = rng.randint(0, len(data))
            what.append("a NUL or invalid UTF-8 inside " + key)
            return data[:at] + rng.choice([b"\0", b"\xff", b"\xc3", b"\xed\xa0\x80"]) + data[at:]
        return spoiled_field(base, payment, spoil)
    if kind < 75:
        body, change = not_flat_message(base)
    elif kind < 78:
        body, change = padded_message(base, 1 << 18)
    else:
        body, change = other_fields_message(), "a message of other fields"
    what.append(change)
    return body


def malformed_verify(wx, w, tally, what, payment):
    base = w.payment if payment else w.refund_note
    fee = w.payment_fee if payment else REFUND_FEE
    method = "verify_payment_notification" if payment else "verify_refund_notification"
    client = w.clients["v2"]
    body = xml(base).encode("utf-8")
    expected = rng.choice([None, fee])
    kind = rng.randrange(100)
    if kind < 6:
        client = w.clients[rng.choice(["v3", "legacy"] if payment else ["v3", "legacy", "v2_other"])]
        what.append("a valid body, a client of another generation or merchant")
    elif kind < 16:
        other = rng.randint(1, 2 ** 31 - 2)
        expected = rng.choice([0, False, other + 1 if other >= fee else other, 2 ** 31,
                               rng.randint(2 ** 31, 2 ** 32 - 1)])
        what.append("expected {!r} fen".format(expected))
    elif kind < 22:
        expected = binding_refused_int()
        what.append("an expected amount the binding refuses")
    elif kind < 26:
        body = rng.choice([body.decode(), surrogate("<xml>"), None, [body]])
        what.append("a body the binding refuses")
    elif kind < 28 and tally.huge < HUGE_PER_METHOD:
        body = b"<" * tally.next_huge()
        what.append("{} bytes".format(len(body)))
    else:
        body = malformed_body(wx, base, payment, what)
    return lambda: getattr(client, method)(body, expected)


def malformed_signed(wx, w, tally, what):
    headers = dict(w.headers)
    body = w.v3_body
    expected = rng.choice([None, V3_ORDER_FEE])
    client = w.clients["v3"]
    signed_names = [k for k in headers if k.lower() in SIGNED_HEADERS]
    kind = rng.randrange(100)
    if kind < 5:
        client = w.clients[rng.choice(["v2", "legacy"])]
        what.append("a valid notification, a client of another generation")
    elif kind < 13:
        other = rng.randint(1, 2 ** 31 - 2)
        expected = rng.choice([0, False, other + 1 if other >= V3_ORDER_FEE else other,
                               rng.randint(2 ** 31, 2 ** 32 - 1)])
        what.append("expected {!r} fen".format(expected))
    elif kind < 18:
        expected = binding_refused_int()
        what.append("an expected amount the binding refuses")
    elif kind < 24:
        name = rng.choice(list(headers))
        headers[name] = rng.choice([None, 1, surrogate(headers[name]), b"x"])
        what.append("a header value the binding refuses")
    elif kind < 50:
        how = rng.randrange(4)
        name = rng.choice(signed_names)
        if how == 0:
            del headers[name]
        elif how == 1:
            value = headers[name]
            headers[name] = rng.choice([value + "x", value[:rng.randrange(max(1, len(value)))],
                                        ("B" if value[:1] == "A" else "A") + value[1:]])
        elif how == 2:
            headers[name.swapcase()] = headers[name]
        else:
            headers[name] = rng.choice(["0", "1700000000", "-1", "abc", "", "99999999999999999999"]) \
                if name.lower() == "wechatpay-timestamp" else "AAAA" + headers[name]
        what.append("header {} changed ({})".format(name, how))
    else:
        how = rng.randrange(6)
        if how == 0:
            body = with_byte_changed(body)
        elif how == 1:
            body = body[:rng.randrange(len(body))]
        elif how == 2:
            body = body + rng.choice([b" ", b"\n", b"x", b"}"])
        elif how == 3:
            at = rng.randint(0, len(body))
            body = body[:at] + rng.choice([b"\0", b"\xff", b"\xc3"]) + body[at:]
        elif how == 4:
            body = rng.choice([b"", b"{}", b"null", b"[]", b'{"resource":{}}'])
        else:
            body = body + b" " * ((tally.next_huge() if rng.random() < 0.01 else None)
                                  or log_length(1, 1 << 16))
        what.append("the body changed ({})".format(how))
    return lambda: client.verify_signed_notification(headers, body, expected)


def malformed_sign(wx, w, tally, what):
    s = rng.randrange(4)
    scheme, key = SIGN_SCHEMES[s]
    params = dict(rng.choice([
        {"appid": "wx1", "noncestr": "n", "timestamp": "1399514976"},
        {"bank_type": "WX", "body": "支付测试", "input_charset": "UTF-8", "total_fee": "1"},
        {"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "total_fee": "1999"}]))
    kind = rng.randrange(100)
    if kind < 45:
        scheme = rng.choice([scheme.upper(), scheme + rng.choice([" ", "-", "x", "\u0000"]),
                             scheme[:rng.randrange(len(scheme))], "", "md5", "sha1", "MD5",
                             "HMAC-SHA256", "legacy", "v3-rsa", "x" * log_length(1, 1 << 16)])
        what.append("an unknown scheme")
    elif kind < 75 or kind < 90 and s > 1:
        key = ""
        what.append("an empty key")
    elif kind < 90 and s <= 1:
        params["appkey" if s == 1 else "input_charset"] = "x" if s == 1 else rng.choice(
            ["latin1", "UTF-16", "", "GBK\u0000"])
        what.append("a field the scheme refuses")
    else:
        how = rng.randrange(4)
        if how == 0:
            scheme = surrogate(scheme)
        elif how == 1:
            key = surrogate(key)
        elif how == 2:
            params[rng.choice(list(params))] = rng.choice([1, None, 1.5, surrogate("v"), [1]])
        else:
            params = rng.choice([[("a", "b")], "a=b", None, 1])
        what.append("an argument the binding refuses ({})".format(how))
    return lambda: wx.sign(scheme, key, params)


# ---------------------------------------------------------------- setup

def get_json(url, data=None):
    request = urllib.request.Request(url, data=None if data is None else json.dumps(data).encode(),
                                     headers={"Content-Type": "application/json"},
                                     method="GET" if data is None else "POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        text = reply.read()
    return json.loads(text) if text else None


class World:
    """The valid records, and the clients the malformed calls use."""


def set_up(wx, base):
    w = World()
    catcher = NotificationCatcher()
    v3 = get_json(base + "/sandbox/config?api=v3")
    v3["notify_url"] = catcher.url
    w.configs = {"legacy": config_of(wx, get_json(base + "/sandbox/config")),
                 "v2": config_of(wx, get_json(base + "/sandbox/config?api=v2")),
                 "v3": config_of(wx, v3)}
    prefix = "MFU{}T{}".format(os.getpid(), int(time.time()) % 100000)
    w.orders = [wx.Order(**order) for order in valid_orders(prefix)]
    w.refs = [wx.OrderRef.OUT_TRADE_NO(prefix + "C"), wx.OrderRef.TRANSACTION_ID(TRANSACTION_ID)]
    w.refunds = [
        wx.RefundRequest(order=wx.OrderRef.OUT_TRADE_NO("ABUSE1"), out_refund_no="R1", total_fee=2,
                         refund_fee=1),
        wx.RefundRequest(order=wx.OrderRef.TRANSACTION_ID(TRANSACTION_ID),
                         out_refund_no="R-2", total_fee=1999, refund_fee=999, refund_desc="退款"),
    ]
    # Every valid record is accepted: the configs make clients, the other
    # records reach the gateway (a success or its refusal), the
    # notifications verify.
    setup = {name: wx.WxPayClient(config) for name, config in w.configs.items()}
    for order, name in zip(w.orders, ("legacy", "v2", "v3")):
        setup[name].build_pay_params(order)

    def reaches_gateway(call):
        try:
            call()
        except wx.WxPayError.Rejected:
            pass

    for reference in w.refs:
        reaches_gateway(lambda: setup["v2"].query_order(reference))
        reaches_gateway(lambda: setup["v3"].query_order(reference))
        reaches_gateway(lambda: setup["v2"].query_refunds(reference))
    for refund in w.refunds:
        reaches_gateway(lambda: setup["v2"].refund(refund))
    reaches_gateway(lambda: setup["v2"].close_order("ABUSE1"))
    get_json(base + "/sandbox/pay", {"out_trade_no": prefix + "C"})
    headers, w.v3_body = catcher.wait(30, "the sandbox's v3 notification did not arrive")
    catcher.close()
    w.headers = {k: v for k, v in headers.items()
                 if k.lower().startswith("wechatpay-") or k.lower() == "content-type"}
    setup["v3"].verify_signed_notification(w.headers, w.v3_body, V3_ORDER_FEE)
    w.payment_fee = rng.randint(1, 2 ** 31 - 1)
    w.payment = signed(wx.sign, payment_fields(w.payment_fee))
    setup["v2"].verify_payment_notification(xml(w.payment).encode(), w.payment_fee)
    w.refund_note = refund_note_fields()
    setup["v2"].verify_refund_notification(xml(w.refund_note).encode(), REFUND_FEE)
    setup.clear()
    # Fresh clients (no pooled connection) for the malformed calls.
    w.clients = {name: wx.WxPayClient(config) for name, config in w.configs.items()}
    w.clients["v2_other"] = wx.WxPayClient(replaced(w.configs["v2"], mch_id="10000101"))
    return w


# ---------------------------------------------------------------- main

def methods(wx, w):
    """Each method or function: (name, generator of one call, binding only)."""
    extra_args = [(1,), ("x",), (None,), (b"",), (1, 2)]
    return [
        ("WxPayClient(config)", lambda t, what: malformed_config(wx, w, t, what), False),
        ("build_pay_params", lambda t, what: malformed_order(wx, w, t, what), False),
        ("query_order", lambda t, what: malformed_ref_call(wx, w, t, what, "query_order",
                                                           ["v2", "v3"], ["legacy"]), False),
        ("query_refunds", lambda t, what: malformed_ref_call(wx, w, t, what, "query_refunds",
                                                             ["v2"], ["legacy", "v3"]), False),
        ("close_order", lambda t, what: malformed_close(wx, w, t, what), False),
        ("refund", lambda t, what: malformed_refund(wx, w, t, what), False),
        ("verify_payment_notification", lambda t, what: malformed_verify(wx, w, t, what, True), False),
        ("verify_refund_notification", lambda t, what: malformed_verify(wx, w, t, what, False), False),
        ("verify_signed_notification", lambda t, what: malformed_signed(wx, w, t, what), False),
        ("download_certificates", lambda t, what: malformed_download(w, what, extra_args), False),
        # The replies take no argument the library could refuse: every
        # malformed call is one the binding refuses.
        ("notification_success_reply", lambda t, what: malformed_success_reply(w, what, extra_args),
         True),
        ("notification_failure_reply", lambda t, what: malformed_reason(w, what), True),
        ("sign", lambda t, what: malformed_sign(wx, w, t, what), False),
    ]


def malformed_close(wx, w, tally, what):
    if rng.random() < 0.08:
        what.append("a valid number, a 2014-flow client")
        return lambda: w.clients["legacy"].close_order("ABUSE1")
    if rng.random() < 0.05:
        what.append("not a str")
        return lambda: w.clients["v2"].close_order(rng.choice([None, 1, b"A1", ["A1"]]))
    number = bad_id(tally)
    what.append("a refused number of {} characters".format(len(number)))
    client = w.clients[rng.choice(["v2", "v3"])]
    return lambda: client.close_order(number)


def malformed_download(w, what, extra_args):
    if rng.random() < 0.1:
        what.append("an extra argument")
        client = w.clients["v3"]
        return lambda: client.download_certificates(*rng.choice(extra_args))
    name = rng.choice(["legacy", "v2", "v2_other"])
    what.append("a {} client".format(name))
    return w.clients[name].download_certificates


def malformed_success_reply(w, what, extra_args):
    client = w.clients[rng.choice(list(w.clients))]
    arguments = rng.choice(extra_args)
    what.append("an extra argument")
    return lambda: client.notification_success_reply(*arguments)


def malformed_reason(w, what):
    client = w.clients[rng.choice(list(w.clients))]
    how = rng.randrange(3)
    reason = [surrogate(rng.choice(["", "busy", "系统繁忙", "x" * log_length(1, 1 << 16)])),
              rng.choice([None, 1, b"busy", ["busy"], 1.5]), None][how]
    what.append(["a lone surrogate", "not a str", "an extra argument"][how])
    if how == 2:
        return lambda: client.notification_failure_reply("busy", "again")
    return lambda: client.notification_failure_reply(reason)


def run(wx, base):
    print("uniffi-malformed: seed {:#x} (set WXPAY_MALFORMED_SEED to change it)".format(SEED))
    w = set_up(wx, base)
    connections = get_json(base + "/sandbox/stats")["connections"]
    passed = failed = 0
    for name, generate, binding_only in methods(wx, w):
        tally = Tally(name, binding_only)
        for _ in range(CALLS):
            what = []
            call = generate(tally, what)
            tally.call(wx, " + ".join(what), call)
        if tally.report():
            passed += 1
        else:
            failed += 1
    after = get_json(base + "/sandbox/stats")["connections"]
    if after != connections + 1:  # the second count's own connection
        print("uniffi-malformed: the sandbox accepted {} connections during the malformed calls".format(
            after - connections - 1))
        failed += 1
    else:
        print("uniffi-malformed: no connection reached the sandbox")
    print("uniffi-malformed: {} passed, {} failed".format(passed, failed))
    return 0 if failed == 0 else 1


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="wxpay-py-malformed-") as tmp:
        wx = import_binding(tmp)
        return run(wx, argv[1].rstrip("/"))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
