"""What the generated malformed-call tests of the two Python bindings share:
tests/bindings/test_malformed_uniffi.py (the uniffi binding) and
bindings/python-ctypes/tests/test_malformed.py (the ctypes package over the C
API).

Both draw every generated value from the one seeded generator here, ``rng``
(``WXPAY_MALFORMED_SEED``, default below): a seed names one sequence of
calls. Both take from here the sandbox merchant's fixed data (its
API key, the valid orders, the payment and refund notifications), the refused
values they pass on as they are (the ctypes test as JSON strings), the
notify_url that catches the sandbox's API v3 notification, and the mutations
of a v2 notification body that both make the same way. Standard library only.
"""

import http.server
import os
import random
import threading

CALLS = 10000
SEED = int(os.environ.get("WXPAY_MALFORMED_SEED") or "0x77787061794d414c", 0)
HUGE = 16 << 20

# The sandbox merchant's API v2 key.
API_KEY = "192006250b4c09247ec02edce69f6a2d"
# A wechat transaction id of the right shape.
TRANSACTION_ID = "4200000001202401010000000001"
# The refund notification of sandbox merchant 10000100 (refund MFR1 of 999 fen
# of order MF1), its req_info encrypted with the sandbox's published API key;
# the same as in tests/c/malformed.c.
REFUND_FEE = 999
REFUND_REQ_INFO = (
    "WBzGpzQuNpcFxIlFjUUD9OO/2Ktb7gpDXJEHnS0HAw4dP5Vv9AgbEPImPO1GdgBIDXXTmvwp6zzYLUD7V6zTHA1z7Lw"
    "NwaqgMRy8JLf9YtnCID8R0fUwl/md2wo6cobNGZc2eCB52LmwZTReQxG6kPI8BXMnwLhuLLo8JEd+sdz+8zTKcNlu6H+"
    "Wtokcs9DM+R/XrDppbT9uZtU8AJ1o8cymkHeQawkPn4UGpijx1Jk6HweMxhtD/Kagu5+5MhLIV/lNOIiL21buDWJEmI"
    "rdTC9m9FRrILIh5RUGHn6WE9Jxi+JTLZq62A2/t2ZM1JLGntD3Aj22f+b3QjYjHHBygOGwiE/8vLAGEqNMkV76TDI2lj"
    "oh4mSvY0uAzWFQtnwBPj7XdshysKQDIM28m4/RWiy4iMxnUTZIDMuME4s7HSgVLw2/lH8Stk6S+thxDJLkGO3PBrqfP1"
    "mbX96WiG09BarVGyvyiBQC1Z/Pyk5bjpGYkRt2GzReP2h4ef536WZETXV55u92O8zFBhsnaW/Y9I7/hnHfAvykr6IvDp"
    "0zNKKdEFRkmPkPTlnVnZsJiZyIqOEaZVasPsN89PkQO80a8yNcWERc3npClOM3/nf1izpPvKFgFl0fEzV/7kZLeFiB4v"
    "2dix2RzE0VmEg0nsimJbpxf8T099LEwVcXoJ914RKkIqv9VwRmyDnu21Ypjfhoye5wDTWZFpGtf6MO+N3DsfzXPh1c2o"
    "7DwVCoGE++TsO0MQ4SvTw/oDPUbubhyybvrafUMT6XmbS9atB3L6Hh5ZJl4H4sfiimT6DxFFcQV0waW9J665iP2ao+1z"
    "wj32AW0d+qQfkgMB6/YxcsyT+72lR7vA+RHQo3cSg1gNTsa2XDZvuLrwmdwF3RwwU8+CAtKPxy5tVM40kvaba/MXtGkx"
    "xzscdMvnsm5irUO3eTk8ePybCTJorz3YKGMPIQWliooh7WNnTLJkvK0b9041n553E6gBPYA9Gpt3Dh+GmyYWo="
)
# The amount of the API v3 order whose notification the sandbox sends.
V3_ORDER_FEE = 2999
# The headers a v3 notification is verified with (others, such as
# Wechatpay-Signature-Type, are ignored).
SIGNED_HEADERS = ("wechatpay-serial", "wechatpay-signature", "wechatpay-timestamp", "wechatpay-nonce")
# The signing schemes, each with a key it accepts.
SIGN_SCHEMES = [("legacy-package", "8934e7d15453e97507ef794cf7b0519d"),
                ("legacy-sha1", "L8LrMqqeGRxST5reouB0K66CaYAWpqhA"),
                ("v2-md5", API_KEY), ("v2-hmac-sha256", API_KEY)]

# Values the library refuses in a config, whichever binding passes them.
BAD_NON_EMPTY = ["", "   ", "\t"]
BAD_PEM = ["not a key", "", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"]
BAD_API = ["v4", "V2", "", "legacy ", "v2\u0000"]
BAD_API_BASE = ["http://example.com", "http://10.0.0.1:8080", "https://example.com/?q=1",
                "https://u:p@example.com", "ftp://127.0.0.1", "not a url", ""]
BAD_API_V3_KEY = ["0123456789abcdef0123456789abcde", ""]

rng = random.Random(SEED)


def log_length(lo, hi):
    """A length in [lo, hi], log-distributed (every power of two as likely)."""
    if hi <= lo:
        return lo
    k = rng.randint(lo.bit_length(), hi.bit_length())
    low = max(lo, (1 << (k - 1)) if k else 0)
    high = min(hi, (1 << k) - 1 if k else 0)
    return low if low > high else rng.randint(low, high)


def with_byte_changed(data):
    """``data`` with one byte XORed with a value from 1 to 0x7e."""
    at = rng.randrange(len(data))
    return data[:at] + bytes([data[at] ^ rng.randint(1, 0x7e)]) + data[at + 1:]


# ---------------------------------------------------------------- valid data

def valid_orders(prefix):
    """Three valid orders (their fields, in order) numbered from ``prefix``: by
    fen, by yuan, and an API v3 one with every optional field."""
    return [
        {"out_trade_no": prefix + "A", "total_fee": 1, "body": "b", "client_ip": "1.2.3.4"},
        {"out_trade_no": prefix + "B", "total_yuan": "19.99", "body": "支付测试",
         "client_ip": "196.168.1.1"},
        {"out_trade_no": prefix + "C", "total_fee": V3_ORDER_FEE, "body": "C v3",
         "client_ip": "196.168.1.1", "attach": "a1", "expire_minutes": 30, "traceid": "T-1"},
    ]


def payment_fields(fee):
    """The fields of a payment notification of ``fee`` fen to the sandbox
    merchant, unsigned."""
    return [
        ["appid", "wxd930ea5d5a258f4f"], ["mch_id", "10000100"], ["nonce_str", "malformed"],
        ["out_trade_no", "MALFORMED1"], ["result_code", "SUCCESS"], ["return_code", "SUCCESS"],
        ["total_fee", str(fee)], ["transaction_id", TRANSACTION_ID],
        ["time_end", "20240101120000"], ["attach", "a & <b>"]]


def refund_note_fields():
    """The fields of the refund notification of REFUND_FEE fen (REFUND_REQ_INFO)."""
    return [["return_code", "SUCCESS"], ["appid", "wxd930ea5d5a258f4f"],
            ["mch_id", "10000100"], ["nonce_str", "malformed"], ["req_info", REFUND_REQ_INFO]]


def xml(fields):
    """A flat <xml> message of (name, text) pairs (CDATA or plain, by chance)."""
    parts = []
    for k, v in fields:
        cdata = rng.random() < 0.7 or "<" in v or "&" in v
        parts.append("<{0}>{1}{2}{3}</{0}>".format(k, "<![CDATA[" if cdata else "", v,
                                                   "]]>" if cdata else ""))
    return "<xml>" + "".join(parts) + "</xml>"


def signed(sign, fields):
    """The notification's fields with a `sign` made with the sandbox merchant's
    API key (any previous one replaced); ``sign`` is the binding's
    ``sign(scheme, key, params)``."""
    fields = [[k, v] for k, v in fields if k != "sign"]
    return fields + [["sign", sign("v2-md5", API_KEY, dict(fields))]]


class NotificationCatcher:
    """A notify_url on loopback that keeps the first request POSTed to it."""

    def __init__(self):
        self.request = None
        self._arrived = threading.Event()
        catcher = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if catcher.request is None:
                    catcher.request = (dict(self.headers.items()), body)
                    catcher._arrived.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:{}/notify".format(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, timeout=30, failure="no notification reached the notify_url"):
        """The first request, (headers, body); raises AssertionError(failure)
        when none came within ``timeout`` seconds."""
        if not self._arrived.wait(timeout):
            raise AssertionError(failure)
        return self.request

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- malformed v2 notifications
# Pieces of a malformed v2 notification body made from valid fields (those of
# payment_fields, signed, or of refund_note_fields): the mutations of
# tests/c/malformed.c.

# The fields a refund notification is checked by.
REFUND_CHECKED = ["return_code", "appid", "mch_id", "req_info"]


def changed_fields(base, payment, bad_total_fees, sign):
    """The message with one field changed, removed, added or repeated; a
    payment's, by chance, signed again with ``sign`` (see ``signed``), so that
    only the change itself is wrong. A payment's total_fee, when changed, is
    one of ``bad_total_fees``. Returns (body, how: 0 to 5, what changed,
    whether signed again)."""
    fields = [list(f) for f in base]
    names = [k for k, _ in fields]
    resign = payment and rng.random() < 0.4
    how = rng.randrange(4 if resign else 6)
    if how == 0:
        key = rng.choice(["appid", "mch_id", "return_code"])
        if rng.random() < 0.2:
            fields = [f for f in fields if f[0] != key]
        else:
            fields[names.index(key)][1] = rng.choice(
                ["FAIL", "", "success", "SUCCESS "] if key == "return_code" else
                ["", "wx0000000000000000", "10000101", "1900000109", " 10000100"])
        change = key + " changed or removed"
    elif how == 1 and payment:
        fields[names.index("total_fee")][1] = rng.choice(bad_total_fees)
        change = "total_fee not an amount"
    elif how == 1:
        value = fields[names.index("req_info")][1]
        at = 4 * rng.randrange(len(value) // 4 - 1)
        fields[names.index("req_info")][1] = rng.choice([
            value[:at] + rng.choice("*!-_%.~") + value[at:], value[:at] + value[at + 4:],
            rng.choice(["", "AAAA", "QUJD", "=", "===="])])
        change = "req_info that cannot decrypt"
    elif how == 2 and payment:
        key = rng.choice(["out_trade_no", "transaction_id"])
        fields[names.index(key)][1] = rng.choice(["", "7" * rng.randint(65, 300)])
        change = key + " empty or too long"
    elif how == 2:
        fields = [f for f in fields if f[0] != "req_info"]
        change = "req_info removed"
    elif how == 3:
        key = "total_fee" if payment else rng.choice(["appid", "mch_id"])
        fields = [f for f in fields if f[0] != key]
        change = key + " removed"
    elif how == 4:
        i = rng.randrange(len(fields))
        if fields[i][0] == "sign":
            fields[i][1] = fields[i][1][:-1] + ("1" if fields[i][1][-1:] == "0" else "0")
        elif rng.random() < 0.5:
            fields[i][1] += "0"
        else:
            fields.append(["x_{:06x}".format(rng.getrandbits(24)), "1"])
        if not payment:  # a refund notification is authenticated by its ids and req_info
            fields[names.index("return_code")][1] = "FAIL"
        change = "a signed field changed or added"
    else:
        fields.append(list(rng.choice(fields)))
        change = "a field twice"
    if resign:
        fields = signed(sign, fields)
    return xml(fields).encode("utf-8"), how, change, resign


def spoiled_field(base, payment, spoil):
    """The message with the text of one checked field (its name chosen here)
    replaced by ``spoil(name, its UTF-8 bytes)``, unescaped: a NUL or invalid
    UTF-8 inside a field."""
    fields = [list(f) for f in base]
    names = [k for k, _ in fields]
    key = rng.choice(names if payment else REFUND_CHECKED)
    i = names.index(key)
    data = spoil(key, fields[i][1].encode("utf-8"))
    marker = "\x00MARK\x00"
    fields[i][1] = marker
    return xml(fields).encode("utf-8").replace(marker.encode(), data)


def not_flat_message(base):
    """The message made something other than a flat <xml> message. Returns
    (body, what it is)."""
    text = xml(base)
    how = rng.randrange(8)
    what = "not a flat <xml> message ({})".format(how)
    if how == 0:
        return text.encode()[:rng.randrange(len(text))], what
    if how == 1:
        return (text + rng.choice(["x", "<xml></xml>", "<a>1</a>", "]]>"])).encode(), what
    if how == 2:
        return ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                + text).encode(), what
    if how == 3:
        return ('<xml a="1">' + text[5:]).encode(), what
    if how == 4:
        return (text[:5] + "<nested><a>1</a></nested>" + text[5:]).encode(), what
    if how == 5:
        return ("<XML>" + text[5:]).encode(), what
    if how == 6:
        return (text[:5] + "<a>&e;</a>" + text[5:]).encode(), what
    return rng.choice([b"", b'{"return_code":"SUCCESS"}', b"return_code=SUCCESS&sign=x",
                       b"<xml>", b"</xml>", b"<xml/>", b"<>", b"\xef\xbb\xbf"]), what


def padded_message(base, longest):
    """The message with a padding field of 64 KiB + 1 to ``longest`` bytes.
    Returns (body, what it is)."""
    text = xml(base)
    length = log_length(64 * 1024 + 1, longest)
    return (text[:5] + "<pad>" + "p" * length + "</pad>" + text[5:]).encode(), "{} bytes".format(length)


def other_fields_message():
    """A message of 0 to 5 fields of other names."""
    return xml([["f{}".format(i), "{:x}".format(rng.getrandbits(64))]
                for i in range(rng.randrange(6))]).encode()
