#!/usr/bin/env python3
"""Generates the malformed-call corpus of libwxpay's C ABI (its format:
tests/malformed/corpus.py) for the sandbox at BASE_URL:

    python3 tests/malformed/generate.py BASE_URL CORPUS

Every malformed call is a valid document with one or more mutations, each of
which alone makes it invalid. The valid documents are the sandbox's own
configurations (`GET /sandbox/config`), the orders, order references and
refunds of the C tests, a payment notification signed with the library's
wxpay_sign, a refund notification encrypted with the sandbox's API key, and
an API v3 notification the sandbox delivers to a loopback port of this
program for an order it pays; the corpus holds them as valid calls, which
the runners check are accepted first. The mutations: NULL for each pointer
in turn (inputs, the client, out-pointers), invalid UTF-8, embedded NULs
(what C reads before them malformed), strings from 0 bytes to 16 MiB
(log-distributed; a handful above WXPAY_MAX_INPUT_BYTES), JSON of the wrong
type at each field and at the top level, every kind of bad amount, missing,
unknown and duplicated keys, over-long values, clients of the wrong API
generation or merchant, and notification bodies whose signature, merchant,
amount or shape is wrong. The functions that take nothing malformable
(wxpay_version, wxpay_result_name/_message with every kind of int code, the
NULL-tolerant frees) get as many calls with their expected results.

Each function gets CALLS calls; a function the typed bindings have then gets
more, of the calls with a typed form (corpus.typed), until CALLS of its calls
have one. The generator is seeded: WXPAY_MALFORMED_SEED (decimal or 0x-hex;
default below), printed. It needs the library (through the ctypes package of
bindings/python-ctypes, WXPAY_LIB honoured) to sign and to have the API v3
order paid.
"""

import http.server
import json
import os
import random
import sys
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parents[1] / "bindings" / "python-ctypes"))
import corpus  # noqa: E402
import wxpay_ctypes  # noqa: E402
from corpus import CALLS, ERR, OUT, Client  # noqa: E402

DEFAULT_SEED = 0x77787061794D414C
MAX = corpus.MAX_INPUT_BYTES
HUGE = 16 << 20
# Strings above MAX per function (the first two of HUGE bytes).
HUGE_PER_FUNCTION = 6
# Configurations refused only after the API v3 merchant key was parsed (an
# RSA key: tens of milliseconds in a debug build), per corpus.
SLOW_PER_FUNCTION = 25
CLIENT_TIMEOUT_MS = 5000
V3_ORDER_FEE = 2999
REFUND_FEE = 999
TRANSACTION_ID = "4200000001202401010000000001"
# The refund notification of sandbox merchant 10000100: refund MFR1 of 999
# fen of order MF1 (1999 fen), its req_info encrypted (AES-256-ECB) with the
# sandbox's published API key.
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
RESULT_NAMES = {
    0: "ok", 1001: "null_argument", 1002: "invalid_utf8", 1003: "input_too_long",
    1101: "invalid_json", 1102: "invalid_config", 1103: "invalid_order", 1104: "invalid_argument",
    1105: "invalid_notification", 1201: "network", 1202: "http_status", 1203: "gateway",
    1204: "malformed_response", 1205: "token_store", 1206: "rejected", 1901: "panic",
    1902: "internal"}

rng = random.Random(DEFAULT_SEED)


def percent(p):
    return rng.randrange(100) < p


def log_length(lo, hi):
    """A length in [lo, hi], log-distributed (every power of two as likely)."""
    if hi <= lo:
        return lo
    k = rng.randint(lo.bit_length(), hi.bit_length())
    low = max(lo, (1 << (k - 1)) if k else 0)
    high = min(hi, (1 << k) - 1 if k else 0)
    return low if low > high else rng.randint(low, high)


def digits(n):
    return str(rng.randint(1, 9)) + "".join(str(rng.randrange(10)) for _ in range(n - 1))


INVALID_UTF8 = [b"\xff", b"\xfe", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80",
                b"\xf4\x90\x80\x80", b"\x80", b"\xbf", b"\xc3", b"\xe6\x94", b"\xf0\x9f\x98",
                b"\xc3\x28", b"\xf8\x88\x80\x80\x80"]


def with_invalid_utf8(data, limit=None):
    """``data`` with an invalid UTF-8 sequence inserted before ``limit``, where
    the next byte is ASCII (the sequence cannot complete a character there)."""
    limit = len(data) if limit is None else limit
    at = rng.randint(0, limit)
    while at < limit and data[at] >= 0x80:
        at += 1
    return data[:at] + rng.choice(INVALID_UTF8) + data[at:]


class Call:
    """One call: its verdict, function, arguments (as corpus.py holds them)
    and notes on what it was made of; ``huge``/``slow``: it took one of the
    function's strings above MAX / slow configurations."""

    def __init__(self, function, verdict="refuse", args=()):
        self.function, self.verdict, self.args = function, verdict, list(args)
        self.notes, self.huge, self.slow = [], 0, False

    def note(self, text):
        self.notes.append(text)


class Budget:
    """What a function took so far of the handful of strings above MAX and of
    slow configurations; ``lean``: only calls with a typed form are kept now,
    so the mutations that have none are left out where that is simple."""

    def __init__(self):
        self.huge = self.slow = 0
        self.lean = False

    def huge_length(self, call):
        """A length above MAX while the handful lasts, else None."""
        if self.huge + call.huge >= HUGE_PER_FUNCTION:
            return None
        call.huge += 1
        return HUGE if self.huge + call.huge <= 2 else log_length(MAX + 1, HUGE)


def maybe_error():
    """An out_error pointer, or NULL (one call in eight)."""
    return None if percent(12) else ERR


# ---------------------------------------------------------------- bad values

def bad_fen(null_refused, lean=False):
    """A JSON value that is not an amount of fen from 1 to 2^31-1 (``lean``:
    one that a u32 holds)."""
    if lean:
        return rng.choice(["0", "-0", "2147483648", "4294967295",
                           str(rng.randint(2 ** 31, 2 ** 32 - 1))])
    return rng.choice([
        lambda: rng.choice(["0", "-0"]),
        lambda: "-{}".format(rng.randint(1, 2 ** 63 - 1)),
        lambda: "-{}".format(rng.randint(1, 100000)),
        lambda: str(rng.randint(2 ** 31, 2 ** 64 - 1)),
        lambda: rng.choice(["2147483648", "4294967295", "4294967296", "9223372036854775807",
                            "18446744073709551615", "18446744073709551616",
                            "-9223372036854775808"]),
        lambda: digits(rng.randint(20, 79)),  # more digits than any integer type holds
        lambda: rng.choice(["0.01", "1.5", "1e2", "1E2", "1.0", "100.0", "-1.5", "1e-2", "0.0",
                            "2147483647.0"]),
        lambda: "{}.{:02d}".format(rng.randrange(100000), rng.randint(1, 99)),
        lambda: rng.choice(['"100"', '"1"', '"0.01"', '""', '"abc"', '"1999"']),
        lambda: rng.choice(["true", "false"]),
        lambda: rng.choice(["[]", "[1]", "{}", '{"fen":1}']),
    ] + [lambda: "null"] * bool(null_refused))()


def bad_yuan(null_refused):
    """A JSON value that is not a decimal string of yuan from 0.01 to
    21474836.47 with at most two decimals."""
    return rng.choice([
        lambda: json.dumps(rng.choice([
            "0", "0.00", "-0", "-1", "-0.01", "0.001", "1.234", "21474836.48",
            "99999999999999999999", "NaN", "inf", "-inf", "Infinity", "1e2", "1E2", "+1", "1,00",
            "0x10", "", "   ", "1.2.3", "abc", "1 0", ".", "1.", "\uff11", "1.\u0000"])),
        lambda: '"{}.{:02d}{}"'.format(rng.randrange(1000), rng.randrange(100), rng.randint(1, 9)),
        lambda: '"{}.{:02d}"'.format(rng.randint(21474837, 99999999999), rng.randrange(100)),
        lambda: '"{}"'.format(digits(rng.randint(12, 71))),
        lambda: '"-{}.{:02d}"'.format(rng.randint(1, 1000), rng.randrange(100)),
        lambda: rng.choice(["0.29", "19.99", "1", "100", "0", "-1"]),  # a number, not a string
        lambda: rng.choice(["true", "false"]),
        lambda: rng.choice(["[]", '["1.00"]', "{}", '{"yuan":"1"}']),
    ] + [lambda: "null"] * bool(null_refused))()


WRONG_FOR = {
    "string": ["0", "123", "-1", "1.5", "1e3", "true", "false", "[]", '["x"]', "{}",
               '{"value":"x"}'],
    "integer": ['"30"', '""', "true", "false", "[]", "[30]", "{}", '{"value":30}', "1.5", "-1.5",
                "1e3"],
    "fen": ['"1"', '""', "true", "false", "[]", "[1]", "{}", '{"fen":1}', "1.5", "1e2", "1.0"],
    "yuan": ["1", "19.99", "0.29", "true", "false", "[]", '["1.00"]', "{}", '{"yuan":"1"}'],
    "any": ["1.5", "1e2", "-0.5", "true", "false", "null", "[]", '["x"]', "{}", '{"a":"b"}'],
}

# ---------------------------------------------------------------- documents
# A document is a list of [key, raw JSON value text] (keys may repeat).


def as_doc(mapping):
    return [[k, json.dumps(v, ensure_ascii=False)] for k, v in mapping.items()]


def doc_json(doc):
    return "{" + ",".join(json.dumps(k) + ":" + v for k, v in doc) + "}"


def find(doc, key):
    return next((i for i, (k, _) in enumerate(doc) if k == key), -1)


def set_value(doc, key, raw):
    i = find(doc, key)
    if i < 0:
        doc.append([key, raw])
    else:
        doc[i][1] = raw


REQUIRED, NULL, SLOW = 1, 2, 4  # removal refused, null refused, refused only after an RSA key


class Field:
    """What the generator knows about a field of a valid document: its kind,
    flags, raw JSON values certainly refused, the longest value accepted (0:
    no limit) and what an over-long one starts with."""

    def __init__(self, kind="string", flags=0, bad=(), max_len=0, long_prefix=""):
        self.kind, self.flags, self.bad = kind, flags, list(bad)
        self.max_len, self.long_prefix = max_len, long_prefix


class Spec:
    """A kind of document: its fields, whether unknown and duplicated keys are
    refused (header names: case-insensitively), and mutations of its own
    (``extras``: key -> [(name, function(doc, index))])."""

    def __init__(self, fields, unknown_refused=True, duplicates_refused=True,
                 case_insensitive=False, extras=None, any_key=None):
        self.fields, self.any_key, self.extras = fields, any_key, extras or {}
        self.unknown_refused, self.duplicates_refused = unknown_refused, duplicates_refused
        self.case_insensitive = case_insensitive

    def field(self, key):
        return self.any_key or next(
            (f for name, f in self.fields.items() if name.lower() == key.lower()), None)

    def extras_of(self, key):
        return next((e for name, e in self.extras.items() if name.lower() == key.lower()), [])


def strings(*values):
    return [json.dumps(v) for v in values]


BAD_NON_EMPTY = strings("", "   ", "\t")
BAD_PEM = strings("not a key", "", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                  "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
CONFIG_FIELDS = {
    "api": Field(flags=REQUIRED | NULL,
                 bad=strings("v4", "V2", "", "legacy ", "v2\u0000", "API v3")),
    "appid": Field(flags=REQUIRED | NULL, bad=BAD_NON_EMPTY),
    "notify_url": Field(flags=REQUIRED | NULL, max_len=255, long_prefix="https://example.com/",
                        bad=strings("", "not a url", "ftp://example.com/notify",
                                    "mailto:pay@example.com", "//example.com/n", "/notify",
                                    "https://exa mple.com/", "https://exa\u0000mple.com/")),
    "api_base": Field(bad=strings("http://example.com", "http://10.0.0.1:8080",
                                  "https://example.com/?q=1", "https://example.com/#f",
                                  "https://u:p@example.com", "ftp://127.0.0.1", "not a url", "",
                                  "127.0.0.1:8080")),
    "timeout_ms": Field("integer", NULL, ["0", "300001", "18446744073709551615",
                                          "18446744073709551616", "-1", "1.5", "1e3"]),
    "app_secret": Field(flags=REQUIRED | NULL, bad=['""']),
    "app_key": Field(flags=REQUIRED | NULL, bad=['""']),
    "partner_id": Field(flags=REQUIRED | NULL, bad=BAD_NON_EMPTY),
    "partner_key": Field(flags=REQUIRED | NULL, bad=['""']),
    "mch_id": Field(flags=REQUIRED | NULL, bad=BAD_NON_EMPTY),
    "api_key": Field(flags=REQUIRED | NULL, bad=['""']),
    "sign_type": Field(flags=NULL, bad=strings("SHA1", "md5", "", "HMAC_SHA256", "RSA")),
    "mchid": Field(flags=REQUIRED | NULL | SLOW, bad=BAD_NON_EMPTY),
    "merchant_private_key": Field(flags=REQUIRED | NULL, bad=BAD_PEM),
    "merchant_serial_no": Field(flags=REQUIRED | NULL | SLOW, bad=BAD_NON_EMPTY),
    "api_v3_key": Field(flags=REQUIRED | NULL | SLOW, bad=strings(
        "0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdef0", "")),
    "wechatpay_public_key": Field(flags=SLOW, bad=BAD_PEM),
    "wechatpay_public_key_id": Field(flags=REQUIRED | NULL | SLOW, bad=BAD_NON_EMPTY),
}


def switch_generation(doc, i):
    """Another generation's name: its own keys are missing from the document."""
    now = doc[find(doc, "api")][1] if find(doc, "api") >= 0 else '"legacy"'
    set_value(doc, "api", rng.choice([g for g in ('"legacy"', '"v2"', '"v3"') if g != now]))


def refused_known_key(doc, i):
    """A key the configuration knows, with a value of the wrong type or refused."""
    key, raw = rng.choice([
        ("sandbox", '"yes"'), ("sandbox", "1"), ("token_store_fallback", '"true"'),
        ("input_charset", '"latin1"'), ("input_charset", '"UTF-16"'),
        ("token_store", '"memcached://127.0.0.1"'), ("token_store", '""'),
        ("platform_cert_refresh_secs", '"60"'), ("platform_cert_refresh_secs", "-1"),
        ("client_cert", '"apiclient_cert.p12"'), ("client_cert", '{"pfx":"x"}'),
        ("merchant_private_key_file", "7")] + [  # API v2 reads its certificate at once
        ("client_cert", cert) for cert in ('{"pem":"not a certificate"}', "{}",
                                           '{"cert_pem_file":"/nonexistent/apiclient_cert.pem"}',
                                           '{"pkcs12_file":"/nonexistent/apiclient_cert.p12",'
                                           '"pkcs12_password":"10000100"}')
        if find(doc, "api") >= 0 and doc[find(doc, "api")][1] == '"v2"'])
    if find(doc, key) < 0:
        doc.append([key, raw])
    else:
        set_value(doc, "timeout_ms", "0")


def key_file(doc, i):
    """API v3: the key both inline and as a file, or only as an unreadable file."""
    missing = '"/nonexistent/wxpay-malformed/apiclient_key.pem"'
    if percent(50):
        set_value(doc, "merchant_private_key_file", missing)
    else:
        del doc[find(doc, "merchant_private_key")]
        set_value(doc, "merchant_private_key_file",
                  missing if percent(50) else '"/nonexistent-directory/"')


KNOWN_KEY = [("a known key refused", refused_known_key)]
GENERATION = [("another generation", switch_generation)]
# A 2014-flow configuration has no `api`: the switch goes with appid.
CONFIG_SPECS = {
    "legacy": Spec(CONFIG_FIELDS, extras={"appid": GENERATION, "timeout_ms": KNOWN_KEY}),
    "v2": Spec(CONFIG_FIELDS, extras={"api": GENERATION, "timeout_ms": KNOWN_KEY}),
    "v3": Spec(CONFIG_FIELDS, extras={"api": GENERATION, "timeout_ms": KNOWN_KEY,
                                      "merchant_private_key": [("the key as a file", key_file)]}),
}
CONFIG_SPECS["v2hmac"] = CONFIG_SPECS["v2"]


def both_amounts(doc, i):
    """The other amount too: exactly one of total_fee and total_yuan is allowed."""
    if find(doc, "total_fee") >= 0:
        set_value(doc, "total_yuan", '"0.01"')
    else:
        set_value(doc, "total_fee", "1")


def both_ids(doc, i):
    if find(doc, "out_trade_no") >= 0:
        set_value(doc, "transaction_id", json.dumps(TRANSACTION_ID))
    else:
        set_value(doc, "out_trade_no", '"MALFORMED1"')


def enum_form(doc, i):
    """serde's enum form of an order reference: an unknown key."""
    doc[i][0] = "OutTradeNo" if doc[i][0] == "out_trade_no" else "TransactionId"


def refund_above_total(doc, i):
    """Valid amounts, but more refunded than paid."""
    total = rng.randint(1, 2 ** 31 - 2)
    set_value(doc, "total_fee", str(total))
    set_value(doc, "refund_fee", str(rng.randint(total + 1, 2 ** 31 - 1)))


BAD_ID = strings("", "A B", "A.B", "A/B", "A\u0000", "订单", "A+B", "A#1", "A%20", "A\n", "Å")
ID = Field(flags=REQUIRED | NULL, bad=BAD_ID, max_len=32)
TRANSACTION = Field(flags=REQUIRED | NULL, bad=BAD_ID, max_len=32, long_prefix="4200")
BOTH_AMOUNTS = [("both amounts", both_amounts)]
BOTH_IDS = [("both identifiers", both_ids)]
ORDER_SPEC = Spec({
    "out_trade_no": ID,
    "total_fee": Field("fen", REQUIRED | NULL),
    "total_yuan": Field("yuan", REQUIRED | NULL),
    "body": Field(flags=REQUIRED | NULL, max_len=128, bad=strings(
        "", "a\u0001b", "line\nbreak", "tab\tx", "del\u007f", "nul\u0000", "\u0085")),
    "client_ip": Field(flags=REQUIRED | NULL, bad=strings(
        "", "::1", "256.1.1.1", "1.2.3", "1.2.3.4.5", "localhost", " 1.2.3.4", "1.2.3.4 ",
        "1.2.3.-4", "0x7f.0.0.1", "01.2.3.4", "1.2.3.4/32")),
    "attach": Field(max_len=127, bad=strings("a\u0001", "\u0000", "x\ny")),
    "expire_minutes": Field("integer", 0, ["0", "4", "10081", "4294967296", "-1", "1.5",
                                           "100000000000000000000"]),
    "traceid": Field(max_len=64, bad=strings("", "a b", "\u00e9", "a\u0001", "\u0000")),
}, extras={"total_fee": BOTH_AMOUNTS, "total_yuan": BOTH_AMOUNTS})
REF_EXTRAS = BOTH_IDS + [("serde's enum form", enum_form)]
REF_SPEC = Spec({"out_trade_no": ID, "transaction_id": TRANSACTION},
                extras={"out_trade_no": REF_EXTRAS, "transaction_id": REF_EXTRAS})
REFUND_SPEC = Spec({
    "out_trade_no": ID,
    "transaction_id": TRANSACTION,
    "out_refund_no": Field(flags=REQUIRED | NULL, max_len=64, long_prefix="R", bad=strings(
        "", "R 1", "退", "R\u0000", "R/1", "R.1", "R\t1")),
    "total_fee": Field("fen", REQUIRED | NULL),
    "refund_fee": Field("fen", REQUIRED | NULL),
    "refund_desc": Field(max_len=80),
}, extras={"out_trade_no": BOTH_IDS, "transaction_id": BOTH_IDS,
           "refund_fee": [("refund_fee above total_fee", refund_above_total)]})


def changed_header(doc, i):
    """A Wechatpay-* header with another value: the signature covers the
    timestamp and the nonce, the serial names the key, the timestamp must be
    recent."""
    value = json.loads(doc[i][1])
    how = rng.randrange(5)
    if how == 0:  # one character changed
        at = rng.randrange(len(value)) if value else 0
        text = value[:at] + ("B" if value[at:at + 1] == "A" else "A") + value[at + 1:]
    elif how == 1:
        text = value[:rng.randrange(max(1, len(value)))]
    elif how == 2:
        text = value + "0"
    elif how == 3 and doc[i][0].lower() == "wechatpay-timestamp":
        text = rng.choice(["0", "1700000000", "-1", "abc", "", "99999999999999999999",
                           " 1700000000"])
    elif how == 3:
        text = value + "x"
    else:
        text = rng.choice(["", "AAAA", "not base64!", "PUB_KEY_ID_0"])
        text += "x" * (text == value)
    doc[i][1] = json.dumps(text)


SIGNED_HEADERS = ("Wechatpay-Serial", "Wechatpay-Signature", "Wechatpay-Timestamp",
                  "Wechatpay-Nonce")
# Other headers are allowed (and ignored).
HEADER_SPEC = Spec(dict({name: Field(flags=REQUIRED | NULL) for name in SIGNED_HEADERS},
                        **{"Content-Type": Field(flags=NULL)}),
                   unknown_refused=False, case_insensitive=True,
                   extras={name: [("a Wechatpay-* header changed", changed_header)]
                           for name in SIGNED_HEADERS})
# wxpay_sign's params: any key, string or integer values.
PARAMS_SPEC = Spec({}, unknown_refused=False, duplicates_refused=False, any_key=Field("any", NULL))


def mutate_fields(doc, base, spec, call, slow_ok, lean):
    """Applies 1 to 3 structural mutations to ``doc`` (a copy of ``base``),
    each certainly refused, each on a field no other one touched (nor added:
    a second mutation must not undo the first). Returns how many."""
    base_keys = {k for k, _ in base}
    touched = set()
    wanted, applied = rng.randint(1, 3), 0
    for _ in range(40):
        if applied == wanted or not doc:
            break
        i = rng.randrange(len(doc))
        key = doc[i][0]
        field = spec.field(key)
        if key not in base_keys or key.lower() in touched or field is None:
            continue
        blocked = field.flags & SLOW and not slow_ok
        how = rng.randrange(8)
        if lean and (how in (2, 5, 6) or how == 1 and not spec.any_key):
            continue  # null, twice, unknown: no typed form; the wrong type: the binding refuses it
        if how == 0 and field.flags & REQUIRED and not blocked:
            del doc[i]
            call.note(key + " removed")
        elif how == 1:
            doc[i][1] = rng.choice(WRONG_FOR[field.kind])
            call.note(key + " of the wrong type")
        elif how == 2 and field.flags & NULL and not blocked:
            doc[i][1] = "null"
            call.note(key + " null")
        elif how == 3 and (field.kind in ("fen", "yuan") or field.bad and not blocked):
            doc[i][1] = (bad_fen(field.flags & NULL, lean) if field.kind == "fen" else
                         bad_yuan(field.flags & NULL) if field.kind == "yuan" else
                         rng.choice(field.bad))
            call.note(key + " refused value")
        elif how == 4 and field.max_len:  # too long: a little, or up to half a mebibyte
            length = (field.max_len + 1 + rng.randrange(16) if percent(85) else
                      log_length(field.max_len + 1, MAX // 2))
            prefix = field.long_prefix
            doc[i][1] = json.dumps(prefix + "A" * max(1, length - len(prefix)))
            call.note("{} of {} bytes".format(key, length))
        elif how == 5 and spec.duplicates_refused:
            twin = key.swapcase() if spec.case_insensitive and percent(50) else key
            doc.append([twin, doc[i][1]])
            call.note(key + " twice")
        elif how == 6 and spec.unknown_refused:
            doc.append([rng.choice(["x_malformed", "APPID", "appId", "total", "amount", "price",
                                    "out_trade_no ", "order", "sign", "x\u0001y"])
                        if percent(50) else "k{:08x}".format(rng.getrandbits(32)), '"x"'])
            call.note("an unknown key")
        elif how == 7 and spec.extras_of(key):
            name, apply = rng.choice(spec.extras_of(key))
            apply(doc, i)
            call.note(name)
        else:
            continue
        applied += 1
        touched.add(key.lower())
        call.slow |= bool(field.flags & SLOW) and how in (0, 2, 3)
    return applied


def malformed_json(spec, base, call, budget, slow_ok=False):
    """A malformed JSON argument made from ``base`` (bytes; what C reads may
    end sooner, at an embedded NUL)."""
    doc = [list(pair) for pair in base]
    choice = 0 if budget.lean else rng.randrange(100)
    if choice < 55:  # structural mutations, maybe padded with whitespace
        while not mutate_fields(doc, base, spec, call, slow_ok, budget.lean):
            doc = [list(pair) for pair in base]
        data = doc_json(doc).encode()
        if percent(2):
            data += bytes([rng.choice(b" \n\t\r")]) * (log_length(len(data), 64 * 1024) - len(data))
            call.note("padded to {} bytes".format(len(data)))
        return data
    if choice < 67:
        if percent(50):
            mutate_fields(doc, base, spec, call, False, False)
        call.note("invalid UTF-8")
        return with_invalid_utf8(doc_json(doc).encode())
    if choice < 79:  # an embedded NUL: what C reads is a proper prefix of an object
        if percent(30):
            mutate_fields(doc, base, spec, call, False, False)
        data = doc_json(doc).encode()
        at = rng.randrange(len(data))
        call.note("a NUL at byte {}".format(at))
        data = data[:at] + b"\0" + data[at + 1:]
        return with_invalid_utf8(data) if percent(30) else data
    data = doc_json(doc).encode()
    if choice < 88:  # not JSON
        how = rng.randrange(7)
        call.note("not JSON ({})".format(how))
        return [
            lambda: data[:rng.randrange(len(data))],
            lambda: data + rng.choice([b" x", b"}", b",", b"{}", b"]", b'"', b" null"]),
            lambda: data[:-1] + b",}",
            lambda: b"\xef\xbb\xbf" + data,
            lambda: data[:1] + b"'" + data[2:],
            lambda: rng.choice([b"", b" ", b"{", b"}", b"[", b"nul", b"tru", b"'a'", b'{"a"}',
                                b'{"a":}', b"{:1}", b"{'a':1}", b"NaN", b"-", b'"unterminated']),
            lambda: data[1:],
        ][how]()
    if choice < 99:  # JSON of the wrong type at the top level
        call.note("not an object at the top level")
        how = rng.randrange(5)
        if how == 0:
            return b"[" + data + b"]"
        if how == 1:  # headers may hold other headers: there a nested object as a value
            outer = b'{"document":%s}' if spec.unknown_refused else b'{"Wechatpay-Serial":%s}'
            return outer % data
        if how == 2:
            return json.dumps(data.decode(), ensure_ascii=False).encode()
        return rng.choice([b"null", b"true", b"false", b"0", b"-1", b"1.5", b"[]", b'""',
                           b'"order"', b"[[]]", b"1e400"])
    # Longer than MAX (a handful per function), else a malformed document
    # padded with spaces.
    if not mutate_fields(doc, base, spec, call, False, False):
        data = b"{," + data[1:]
        call.note("a comma first")
    else:
        data = doc_json(doc).encode()
    length = budget.huge_length(call) or log_length(len(data), MAX)
    data += b" " * max(0, length - len(data))
    call.note("{} bytes long".format(len(data)))
    return data


# ---------------------------------------------------------------- notifications

def xml(fields):
    """A flat <xml> message of (name, text) pairs (CDATA or plain, by chance)."""
    parts = []
    for k, v in fields:
        cdata = percent(70) or "<" in v or "&" in v
        parts.append("<{0}>{1}{2}{3}</{0}>".format(k, "<![CDATA[" if cdata else "", v,
                                                   "]]>" if cdata else ""))
    return "<xml>" + "".join(parts) + "</xml>"


def signed(fields, api_key):
    """The payment notification's fields with a `sign` made by wxpay_sign
    with the merchant's API key (any previous one replaced)."""
    fields = [[k, v] for k, v in fields if k != "sign"]
    return fields + [["sign", wxpay_ctypes.sign("v2-md5", api_key, dict(fields))]]


# A payment notification's total_fee that is not an amount.
BAD_TOTAL_FEES = ["0", "-1", "01", "1.5", "1e2", "", " 1", "1 ", "+1", "abc", "2147483648",
                  "99999999999", "１", "0x10", "1999.00"]
# The fields a refund notification is checked by.
REFUND_CHECKED = ["return_code", "appid", "mch_id", "req_info"]


def changed_fields(fields, payment, call, api_key):
    """One field changed, removed, added or repeated; a payment's, by chance,
    signed again, so that only the change itself is wrong."""
    names = [k for k, _ in fields]
    resign = payment and percent(40)
    how = rng.randrange(4 if resign else 6)
    if how == 0:  # the merchant's ids or the return_code
        key = rng.choice(["appid", "mch_id", "return_code"])
        if percent(20):
            fields = [f for f in fields if f[0] != key]
            call.note(key + " removed")
        else:
            fields[names.index(key)][1] = rng.choice(
                ["FAIL", "", "success", "SUCCESS "] if key == "return_code" else
                ["", "wx0000000000000000", "10000101", "1900000109", " 10000100"])
            call.note(key + " changed")
    elif how == 1 and payment:
        fields[names.index("total_fee")][1] = rng.choice(BAD_TOTAL_FEES)
        call.note("total_fee not an amount")
    elif how == 1:  # req_info that cannot decrypt
        value = fields[names.index("req_info")][1]
        at = 4 * rng.randrange(len(value) // 4 - 1)
        fields[names.index("req_info")][1] = rng.choice([
            value[:at] + rng.choice("*!-_%.~") + value[at:],
            value[:at] + value[at + 4:],  # 3 bytes short of whole AES blocks
            rng.choice(["", "AAAA", "QUJD", "=", "===="])])
        call.note("req_info that cannot decrypt")
    elif how == 2 and payment:
        key = rng.choice(["out_trade_no", "transaction_id"])
        if percent(30):
            fields = [f for f in fields if f[0] != key]
        else:
            fields[names.index(key)][1] = rng.choice(["", "7" * rng.randint(65, 264)])
        call.note(key + " removed, empty or too long")
    elif how == 2:
        fields = [f for f in fields if f[0] != "req_info"]
        call.note("req_info removed")
    elif how == 3:
        key = "total_fee" if payment else rng.choice(["appid", "mch_id"])
        fields = [f for f in fields if f[0] != key]
        call.note(key + " removed")
    elif how == 4:  # (not signed again) a signed field changed, removed or added
        i = rng.randrange(len(fields))
        if fields[i][0] == "sign" and percent(30):
            del fields[i]
        elif fields[i][0] == "sign":
            at = rng.randrange(len(fields[i][1]))
            fields[i][1] = fields[i][1][:at] + "01"[fields[i][1][at] == "0"] + fields[i][1][at + 1:]
        elif percent(40):
            del fields[i]
        elif percent(50):
            fields[i][1] += "0"
        else:
            fields.append(["x_{:06x}".format(rng.getrandbits(24)), "1"])
        if not payment:  # a refund notification is authenticated by its ids and req_info
            fields = [f for f in fields if f[0] != "return_code"] + [["return_code", "FAIL"]]
        call.note("a signed field changed, removed or added")
    else:
        fields.append(list(rng.choice(fields)))
        call.note(fields[-1][0] + " twice")
    if resign:
        fields = signed(fields, api_key)
        call.note("signed again")
    return xml(fields).encode()


def not_flat(fields, call):
    """The message made something other than a flat <xml> message."""
    text = xml(fields).encode()
    how = rng.randrange(8)
    call.note("not a flat <xml> message ({})".format(how))
    return [
        lambda: text[:rng.randrange(len(text))],
        lambda: text + rng.choice([b"x", b"<xml></xml>", b"<a>1</a>", b"]]>"]),
        lambda: b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        + text,
        lambda: b'<xml a="1">' + text[5:],
        lambda: text[:5] + b"<nested><a>1</a></nested>" + text[5:],
        lambda: b"<XML>" + text[5:],
        lambda: text[:5] + b"<a>&e;</a>" + text[5:],
        lambda: rng.choice([b"", b'{"return_code":"SUCCESS"}', b"return_code=SUCCESS&sign=x",
                            b"<xml>", b"</xml>", b"<xml/>", b"<>", b"\xef\xbb\xbf"]),
    ][how]()


def malformed_notification(base, payment, call, api_key):
    """A malformed v2 notification body made from ``base`` (its fields): a
    signed payment notification, or a refund one (which only its ids and
    req_info authenticate)."""
    fields = [list(f) for f in base]
    kind = rng.randrange(100)
    if kind < 40:
        return changed_fields(fields, payment, call, api_key)
    if kind < 55:  # a NUL or invalid UTF-8 inside a checked field's value
        i = rng.randrange(len(fields)) if payment else [k for k, _ in fields].index(
            rng.choice(REFUND_CHECKED))
        data = fields[i][1].encode()
        if percent(50):
            at = rng.randint(0, len(data))
            data = data[:at] + b"\0" + data[at:]
            call.note("a NUL inside " + fields[i][0])
        else:
            data = with_invalid_utf8(data)
            call.note("invalid UTF-8 inside " + fields[i][0])
        fields[i][1] = "\x00MARK\x00"
        return xml(fields).encode().replace(b"\x00MARK\x00", data)
    if kind < 75:
        return not_flat(fields, call)
    if kind < 82:  # larger than the verifier reads (64 KiB), up to MAX
        text = xml(fields).encode()
        length = log_length(64 * 1024 + 1, MAX)
        call.note("{} bytes".format(length))
        return text[:5] + b"<pad>" + b"p" * max(1, length - len(text) - 11) + b"</pad>" + text[5:]
    # Not the fields at all: a message of other fields.
    call.note("a message of other fields")
    return xml([["f{}".format(i), "{:x}".format(rng.getrandbits(64))]
                for i in range(rng.randrange(6))]).encode()


# ---------------------------------------------------------------- the functions
# Each makes one malformed call of its function: the valid call, mutated.
# Topping up (budget.lean), the kinds without a typed form, or that the
# binding refuses (NULL), are left out where that is simple.

def null_pointer(call, names):
    """One of the pointer arguments (``names``: {index: name}) made NULL."""
    index = rng.choice(list(names))
    call.args[index] = None
    call.note("NULL " + names[index])


def client_new(b, budget):
    generation = rng.choice(["legacy", "v2", "v2hmac", "v3"])
    base = b.configs[generation]
    call = Call("wxpay_client_new", args=[doc_json(base).encode(), OUT, maybe_error()])
    call.note(generation + " config")
    kind = rng.randrange(12 if budget.lean else 0, 100)
    if kind >= 12 or kind >= 6 and percent(50):  # else NULL, or a valid config
        call.args[0] = malformed_json(CONFIG_SPECS[generation], base, call, budget,
                                      slow_ok=budget.slow < SLOW_PER_FUNCTION)
    if kind < 12:
        null_pointer(call, {0: "config_json"} if kind < 6 else {1: "out_client"})
    return call


def json_call(function, spec, bases, clients, wrong_clients):
    """The calls of a (client, JSON document, out_json, out_error) function."""
    def make(b, budget):
        base = rng.choice(getattr(b, bases))
        call = Call(function, args=[Client(rng.choice(clients)), doc_json(base).encode(), OUT,
                                    maybe_error()])
        kind = rng.randrange(12 if budget.lean else 0, 100)
        if kind < 12:
            null_pointer(call, {0: "client", 1: "document", 2: "out_json"})
        elif kind < 16 and wrong_clients:
            call.args[0] = Client(rng.choice(wrong_clients))
            call.note("a valid document, a client of another API generation")
        else:
            call.args[1] = malformed_json(spec, base, call, budget)
        return call
    return make


SIGN_SCHEMES = ["legacy-package", "legacy-sha1", "v2-md5", "v2-hmac-sha256"]


def unknown_scheme(scheme, call):
    how = rng.randrange(6)
    at = rng.randrange(len(scheme))
    call.note("an unknown scheme ({})".format(how))
    return [
        lambda: scheme[:at] + bytes([scheme[at] ^ 0x20]) + scheme[at + 1:],
        lambda: scheme + rng.choice([b" ", b"-", b"x", b"\n", b"2"]),
        lambda: scheme[:at] + b"\0" + scheme[at + 1:],
        lambda: rng.choice([b"", b"md5", b"sha1", b"MD5", b"HMAC-SHA256", b"legacy", b"v2",
                            b"v3-rsa", b"legacy_sha1"]),
        lambda: with_invalid_utf8(scheme),
        lambda: scheme + b"x" * log_length(1, MAX // 4),
    ][how]()


def sign(b, budget):
    s = rng.randrange(4)
    base = as_doc(rng.choice(b.sign_params))
    call = Call("wxpay_sign", args=[SIGN_SCHEMES[s].encode(), b.keys[SIGN_SCHEMES[s]].encode(),
                                    doc_json(base).encode(), OUT, maybe_error()])
    # Topping up, no malformed params either: the binding refuses them.
    kind = rng.randrange(12, 55) if budget.lean else rng.randrange(100)
    if kind < 12:
        null_pointer(call, {0: "scheme", 1: "key", 2: "params_json", 3: "out_sign"})
    elif kind < 37:
        call.args[0] = unknown_scheme(call.args[0], call)
    elif kind < 55:  # an empty or unreadable key
        key = call.args[1]
        how = rng.randrange(4)
        huge = budget.huge_length(call) if how == 3 else None
        call.args[1] = key + b"k" * (huge - len(key)) if huge else [
            b"", b"\0" + key[1:], with_invalid_utf8(key), b"\0" + key[1:]][how]
        call.note("a key of {} bytes".format(huge) if huge else [
            "an empty key", "a key cut to nothing by a NUL", "a key with invalid UTF-8",
            "a key cut to nothing by a NUL"][how])
    elif kind < 62 and s <= 1:  # a field the scheme refuses
        doc = [list(p) for p in base]
        set_value(doc, "appkey" if s == 1 else "input_charset", '"x"' if s == 1 else rng.choice(
            ['"latin1"', '"UTF-16"', '""', '"GB2312"']))
        call.args[2] = doc_json(doc).encode()
        call.note("appkey among the params" if s == 1 else "an unknown input_charset")
    else:
        call.args[2] = malformed_json(PARAMS_SPEC, base, call, budget)
    return call


BAD_CHARS = [b" ", b".", b"/", b"%", b'"', b"\\", b"+", b"#", b"\t", b"\n", b"\x01", b"\x7f",
             "订".encode(), "å".encode(), b"="]


def bad_number(number, call, budget):
    """An out_trade_no refused: empty, a character outside A-Z a-z 0-9 _ - | *
    @, too long, invalid UTF-8, what C reads before a NUL empty or with a
    refused character, JSON."""
    def too_long():
        length = 33 + rng.randrange(32) if percent(85) else log_length(33, MAX)
        length = (percent(5) and budget.huge_length(call)) or length
        call.note("{} characters".format(length))
        return number + b"A" * (length - len(number))

    how = rng.choices(range(6), [10, 20, 15, 12, 12, 16])[0]
    at = rng.randint(0, len(number) - 1)
    if how != 2:
        call.note(["empty", "a refused character", "", "invalid UTF-8",
                   "a NUL first, or a space then a NUL", "JSON instead of a number"][how])
    return [
        lambda: b"",
        lambda: number[:at] + rng.choice(BAD_CHARS) + number[at:],
        too_long,
        lambda: with_invalid_utf8(number),
        lambda: rng.choice([b"\0" + number[1:], number[:at] + b" \0" + number[at + 1:]]),
        lambda: rng.choice([b'{"out_trade_no":"ABUSE1"}', b'"ABUSE1"', b'["ABUSE1"]',
                            b"ABUSE1,ABUSE2"]),
    ][how]()


def close_order(b, budget):
    number = rng.choice([b"ABUSE1", b"MALFORMED1", b"A-1_2|3*4@5"])
    call = Call("wxpay_close_order", args=[Client(rng.choice(["v2", "v3"])), number, maybe_error()])
    kind = rng.randrange(100)
    if kind < 10:
        null_pointer(call, {0: "client", 1: "out_trade_no"})
    elif kind < 15:
        call.args[0] = Client("legacy")
        call.note("a valid out_trade_no, a 2014-flow client")
    else:
        call.args[1] = bad_number(number, call, budget)
    return call


def notification(call, kind, fee, wrong_clients):
    """What the verifiers share, by ``kind`` (below 28; False for another):
    NULL pointers, a valid notification to a client of another API
    generation or merchant, a wrong expected amount (another, or more than
    2^31-1), a length past the buffer. The body is the argument before its
    length, then the expected amount and out_json."""
    at = len(call.args) - 5
    if kind < 12:
        null_pointer(call, {0: "client", at: "body", at + 3: "out_json",
                            **({1: "headers_json"} if at == 2 else {})})
    elif kind < 16:
        call.args[0] = Client(rng.choice(wrong_clients))
        call.note("a valid notification, a client of another API generation or merchant")
    elif kind < 24:
        other = rng.randint(1, 2 ** 31 - 2)
        call.args[at + 2] = rng.choice([other + (other >= fee), rng.randint(2 ** 31, 2 ** 63 - 1),
                                        rng.choice([2 ** 63 - 1, 2 ** 31, 2 ** 32])])
        call.note("expected {} fen, not {}".format(call.args[at + 2], fee))
    elif kind < 28:
        call.args[at] = rng.choice([call.args[at][:1], call.args[at]])
        call.args[at + 1] = rng.choice([MAX + 1 + rng.randrange(64),
                                        rng.randint(MAX + 1, 2 ** 64 - 1),
                                        2 ** 64 - 1 - rng.randrange(4)])
        call.note("length {} past the buffer".format(call.args[at + 1]))
    else:
        return False
    return True


def verify(payment):
    """The calls of wxpay_verify_payment_notification or _refund_notification."""
    def make(b, budget):
        base, fee = (b.payment, b.payment_fee) if payment else (b.refund_note, REFUND_FEE)
        body = xml(base).encode()
        call = Call("wxpay_verify_{}_notification".format("payment" if payment else "refund"),
                    args=[Client("v2"), body, len(body), fee if percent(50) else -rng.randrange(3),
                          OUT, maybe_error()])
        kind = rng.randrange(100)
        if notification(call, kind, fee, ["v3", "legacy"] + ["v2other"] * (not payment)):
            return call
        if kind < 32:
            call.args[2] = rng.randrange(len(body))
            call.note("length {} of {}".format(call.args[2], len(body)))
        elif kind < 34 and (huge := budget.huge_length(call)):
            call.args[1:3] = [b"<" * huge, huge]
            call.note("{} bytes".format(huge))
        else:
            body = malformed_notification(base, payment, call, b.keys["v2-md5"])
            call.args[1:3] = [body, len(body)]
        return call
    return make


def verify_signed(b, budget):
    body = b.v3_body
    call = Call("wxpay_verify_signed_notification",
                args=[Client("v3"), doc_json(b.headers).encode(), body, len(body),
                      V3_ORDER_FEE if percent(50) else -rng.randrange(3), OUT, maybe_error()])
    kind = rng.randrange(100)
    if notification(call, kind, V3_ORDER_FEE, ["v2", "legacy"]):
        return call
    if kind < 55:  # the body changed: the signature covers every byte
        how = rng.randrange(6)
        at = rng.randrange(len(body))
        call.args[2] = [
            lambda: body[:at] + bytes([body[at] ^ rng.randint(1, 0x7e)]) + body[at + 1:],
            lambda: body,
            lambda: body + rng.choice([b" ", b"\n", b"x", b"}", b"\r\n"]),
            lambda: body[:at] + b"\0" + body[at:],
            lambda: with_invalid_utf8(body),
            lambda: body + b" " * (budget.huge_length(call) or log_length(1, MAX - len(body))),
        ][how]()
        call.args[3] = at if how == 1 else len(call.args[2])
        call.note("the body changed ({}), {} bytes".format(how, call.args[3]))
    else:
        call.args[1] = malformed_json(HEADER_SPEC, b.headers, call, budget)
    return call


ANY_CLIENT = ["legacy", "v2", "v2other", "v3"]


def download_certificates(b, budget):
    call = Call("wxpay_download_certificates",
                args=[Client(rng.choice(ANY_CLIENT)), OUT, maybe_error()])
    if not budget.lean and percent(50):
        null_pointer(call, {0: "client", 1: "out_count"})
    else:
        call.args[0] = Client(rng.choice(["legacy", "v2", "v2other"]))
        call.note("a client of another API generation")
    return call


def success_reply(b, budget):
    call = Call("wxpay_notification_success_reply",
                args=[Client(rng.choice(ANY_CLIENT)), OUT, maybe_error()])
    null_pointer(call, {0: "client", 1: "out_reply"})
    if percent(33):
        null_pointer(call, {0: "client", 1: "out_reply"})
    return call


def failure_reply(b, budget):
    reason = rng.choice([b"", b"busy, try again", "系统繁忙".encode(),
                         b"x]]><return_code>SUCCESS</return_code>"])
    call = Call("wxpay_notification_failure_reply",
                args=[Client(rng.choice(ANY_CLIENT)), reason, OUT, maybe_error()])
    kind = rng.randrange(100)
    if kind < 30:
        null_pointer(call, {0: "client", 1: "reason", 2: "out_reply"})
    elif kind < 98:
        call.args[1] = with_invalid_utf8(reason + (b"\0after the NUL" if percent(30) else b""),
                                         len(reason))
        call.note("invalid UTF-8")
    else:
        length = budget.huge_length(call) or MAX + 1 + rng.randrange(4096)
        call.args[1] = reason + b"r" * (length - len(reason))
        call.note("a reason of {} bytes".format(length))
    return call


FUNCTIONS = [
    ("wxpay_client_new", client_new),
    ("wxpay_build_pay_params", json_call("wxpay_build_pay_params", ORDER_SPEC, "orders",
                                         ["legacy", "v2", "v3"], [])),
    ("wxpay_query_order", json_call("wxpay_query_order", REF_SPEC, "refs", ["v2", "v3"],
                                    ["legacy"])),
    ("wxpay_query_refunds", json_call("wxpay_query_refunds", REF_SPEC, "refs", ["v2"],
                                      ["legacy", "v3"])),
    ("wxpay_refund", json_call("wxpay_refund", REFUND_SPEC, "refunds", ["v2", "v3"], ["legacy"])),
    ("wxpay_sign", sign),
    ("wxpay_close_order", close_order),
    ("wxpay_verify_payment_notification", verify(True)),
    ("wxpay_verify_refund_notification", verify(False)),
    ("wxpay_verify_signed_notification", verify_signed),
    ("wxpay_download_certificates", download_certificates),
    ("wxpay_notification_success_reply", success_reply),
    ("wxpay_notification_failure_reply", failure_reply),
]


def static_calls():
    """The functions that take nothing malformable, with their expected results."""
    edges = [-2 ** 31, -2 ** 31 + 1, -1001, -1, 1, 2, 999, 1000, 1004, 1100, 1106, 1200, 1207,
             1900, 1903, 2000, 10000, 2 ** 31 - 1]
    codes = list(RESULT_NAMES) + edges
    codes += [rng.randint(-2 ** 31, 2 ** 31 - 1) if percent(50) else rng.randint(-500, 2500)
              for _ in range(CALLS - len(codes))]
    for code in codes:
        name = RESULT_NAMES.get(code, "unknown")
        yield Call("wxpay_result_name", "name=" + name, [code])
        yield Call("wxpay_result_message", "unknown" if name == "unknown" else "known", [code])
    for _ in range(CALLS):
        yield Call("wxpay_version", "same")
        yield Call("wxpay_string_free", "void", [None])
        yield Call("wxpay_client_free", "void", [None])


# ---------------------------------------------------------------- the valid documents

def get_json(url, body=None):
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"},
                                     method="GET" if body is None else "POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        text = reply.read()
    return json.loads(text) if text else None


class NotificationCatcher:
    """A notify_url on loopback that keeps the first request POSTed to it."""

    def __init__(self):
        self.request = None
        self.arrived = threading.Event()
        catcher = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if catcher.request is None:
                    catcher.request = (dict(self.headers.items()), body)
                    catcher.arrived.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:{}/notify".format(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Bases:
    """The valid documents the malformed calls are made from."""

    def __init__(self, base_url):
        settings = {name: get_json(base_url + "/sandbox/config" + query) for name, query in
                    (("legacy", ""), ("v2", "?api=v2"), ("v3", "?api=v3"))}
        for config in settings.values():
            config["timeout_ms"] = CLIENT_TIMEOUT_MS
        v2 = settings["v2"]
        settings.update(v2hmac=dict(v2, sign_type="HMAC-SHA256"),
                        v2other=dict(v2, mch_id="10000101"))
        self.configs = {name: as_doc(config) for name, config in settings.items()}
        self.keys = {"legacy-package": settings["legacy"]["partner_key"],
                     "legacy-sha1": settings["legacy"]["app_key"],
                     "v2-md5": v2["api_key"], "v2-hmac-sha256": v2["api_key"]}
        # Of one length, so that a seed gives the same calls against any sandbox.
        prefix = "MF{:07d}T{:05d}".format(os.getpid() % 10 ** 7, int(time.time()) % 100000)
        self.orders = [as_doc(order) for order in (
            {"out_trade_no": prefix + "A", "total_fee": 1, "body": "b", "client_ip": "1.2.3.4"},
            {"out_trade_no": prefix + "B", "total_yuan": "19.99", "body": "支付测试",
             "client_ip": "196.168.1.1"},
            {"out_trade_no": prefix + "C", "total_fee": V3_ORDER_FEE, "body": "C v3",
             "client_ip": "196.168.1.1", "attach": "a1", "expire_minutes": 30, "traceid": "T-1"},
            {"out_trade_no": prefix + "D", "total_yuan": "0.29", "body": "d",
             "client_ip": "10.0.0.1", "expire_minutes": 5})]
        self.refs = [as_doc({"out_trade_no": prefix + "C"}),
                     as_doc({"transaction_id": TRANSACTION_ID})]
        paid = prefix + "N"
        self.refunds = [as_doc(refund) for refund in (
            {"out_trade_no": paid, "out_refund_no": "R" + prefix, "total_fee": V3_ORDER_FEE,
             "refund_fee": 1000},
            {"out_trade_no": "ABUSE1", "out_refund_no": "R1", "total_fee": 2, "refund_fee": 1},
            {"transaction_id": TRANSACTION_ID, "out_refund_no": "R-2", "total_fee": 1999,
             "refund_fee": 999, "refund_desc": "退款"})]
        self.sign_params = [
            {"appid": "wx1", "noncestr": "n", "timestamp": 1399514976},
            {"bank_type": "WX", "body": "支付测试", "fee_type": "1", "input_charset": "UTF-8",
             "notify_url": "http://weixin.qq.com",
             "out_trade_no": "7240b65810859cbf2a8d9f76a638c0a3",
             "partner": "1900000109", "spbill_create_ip": "196.168.1.1", "total_fee": "1"},
            {"appid": v2["appid"], "mch_id": v2["mch_id"], "nonce_str": "m", "out_trade_no": "MF1",
             "total_fee": 1999}]
        # An API v3 order of its own, paid: the sandbox sends its notification here.
        catcher = NotificationCatcher()
        try:
            with wxpay_ctypes.Client(dict(settings["v3"], notify_url=catcher.url)) as client:
                client.build_pay_params({"out_trade_no": paid, "total_fee": V3_ORDER_FEE,
                                         "body": "N v3", "client_ip": "196.168.1.1"})
            get_json(base_url + "/sandbox/pay", {"out_trade_no": paid})
            if not catcher.arrived.wait(30):
                raise RuntimeError("the sandbox's API v3 notification did not arrive")
            headers, self.v3_body = catcher.request
        finally:
            catcher.close()
        self.headers = [[k, json.dumps(v)] for k, v in headers.items()
                        if k.lower().startswith("wechatpay-") or k.lower() == "content-type"]
        self.payment_fee = rng.randint(1, 2 ** 31 - 1)
        self.payment = signed([
            ["appid", v2["appid"]], ["mch_id", v2["mch_id"]], ["nonce_str", "malformed"],
            ["out_trade_no", "MALFORMED1"], ["result_code", "SUCCESS"], ["return_code", "SUCCESS"],
            ["total_fee", str(self.payment_fee)], ["transaction_id", TRANSACTION_ID],
            ["time_end", "20240101120000"], ["attach", "a & <b>"]], self.keys["v2-md5"])
        self.refund_note = [["return_code", "SUCCESS"], ["appid", v2["appid"]],
                            ["mch_id", v2["mch_id"]], ["nonce_str", "malformed"],
                            ["req_info", REFUND_REQ_INFO]]
        # Long texts the corpus names instead of spelling them each time.
        self.fragments = {
            "key": json.dumps(settings["v3"]["merchant_private_key"])[1:-1].encode(),
            "pub": json.dumps(settings["v3"]["wechatpay_public_key"])[1:-1].encode(),
            "appkey": settings["legacy"]["app_key"].encode(),
            "reqinfo": REFUND_REQ_INFO.encode(),
            "body": self.v3_body,
            "signature": next(v for k, v in headers.items()
                              if k.lower() == "wechatpay-signature").encode()}

    def valid_calls(self):
        """Calls every runner checks are accepted before the malformed ones."""
        def call(verdict, function, *args, what):
            made = Call(function, verdict, args)
            made.note(what)
            return made

        def text(doc):
            return doc_json(doc).encode()

        calls = [call("ok", "wxpay_build_pay_params", Client(name), text(order), OUT, ERR,
                      what="a valid order, {} client".format(name))
                 for order, name in zip(self.orders, ["legacy", "v2", "v3", "legacy"])]
        for ref in self.refs:
            for function, name in (("query_order", "v2"), ("query_order", "v3"),
                                   ("query_refunds", "v2")):
                calls.append(call("reach", "wxpay_" + function, Client(name), text(ref), OUT, ERR,
                                  what="a valid order reference, {} client".format(name)))
        for refund, name in zip(self.refunds, ["v3", "v2", "v2"]):
            calls.append(call("reach", "wxpay_refund", Client(name), text(refund), OUT, ERR,
                              what="a valid refund, {} client".format(name)))
        calls.append(call("reach", "wxpay_close_order", Client("v2"), b"ABUSE1", ERR,
                          what="a valid out_trade_no"))
        for function, fields, fee in (("payment", self.payment, self.payment_fee),
                                      ("refund", self.refund_note, REFUND_FEE)):
            body = xml(fields).encode()
            calls.append(call("ok", "wxpay_verify_{}_notification".format(function), Client("v2"),
                              body, len(body), fee, OUT, ERR,
                              what="the {} notification".format(function)))
        calls.append(call("ok", "wxpay_verify_signed_notification", Client("v3"),
                          text(self.headers), self.v3_body, len(self.v3_body), V3_ORDER_FEE,
                          OUT, ERR, what="the API v3 notification"))
        return calls


# ---------------------------------------------------------------- the corpus

def function_calls(b, function, make):
    """CALLS calls of ``function``; then, while fewer than CALLS of them have
    a typed form, more of those (the others are dropped)."""
    budget, calls, typed = Budget(), 0, 0
    while calls < CALLS or (function in corpus.TYPED_FUNCTIONS and typed < CALLS):
        budget.lean = calls >= CALLS
        call = make(b, budget)
        has_typed = corpus.typed(function, call.args) is not None
        if budget.lean and not has_typed:
            continue
        budget.huge += call.huge
        budget.slow += call.slow
        calls += 1
        typed += has_typed
        yield call
    yield function, calls, typed


def generate(base_url, path, seed=None):
    """Writes the corpus for the sandbox at ``base_url`` to ``path``; returns
    the number of calls."""
    if seed is None:
        seed = int(os.environ.get("WXPAY_MALFORMED_SEED") or str(DEFAULT_SEED), 0)
    rng.seed(seed)
    print("malformed corpus: seed {:#018x} (set WXPAY_MALFORMED_SEED to change it)".format(seed),
          flush=True)
    b = Bases(base_url.rstrip("/"))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    counts, total = [], 0
    with open(path + ".part", "w", encoding="ascii") as f:
        f.write("{}\nseed {:#018x}\nsandbox {}\n".format(corpus.FIRST_LINE, seed,
                                                        base_url.rstrip("/")))
        fragments = {}
        for name, data in b.fragments.items():
            f.write("fragment {} {}\n".format(name, corpus.encode_bytes(data, fragments)))
            fragments[name] = data
        for name, doc in b.configs.items():
            token = corpus.encode_bytes(doc_json(doc).encode(), fragments)
            f.write("client {} {}\n".format(name, token))

        def write(call):
            f.write(" ".join([call.verdict, call.function] +
                             [corpus.encode_arg(a, fragments) for a in call.args]))
            f.write(" # {}\n".format(" + ".join(call.notes)) if call.notes else "\n")

        for call in b.valid_calls():
            write(call)
        static = {}
        for call in static_calls():
            write(call)
            static[call.function] = static.get(call.function, 0) + 1
        counts += [(name, calls, 0) for name, calls in static.items()]
        for function, make in FUNCTIONS:
            for call in function_calls(b, function, make):
                if isinstance(call, tuple):
                    counts.append(call)
                else:
                    write(call)
        for function, calls, typed in counts:
            f.write("count {} {} {}\n".format(function, calls, typed))
            total += calls
    os.replace(path + ".part", path)
    print("malformed corpus: {} calls to {} functions in {}".format(total, len(counts), path),
          flush=True)
    return total


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: generate.py BASE_URL CORPUS")
    generate(sys.argv[1], sys.argv[2])
