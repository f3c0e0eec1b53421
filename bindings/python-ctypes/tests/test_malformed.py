"""Generated malformed calls to every function of libwxpay's C API, through
ctypes: at least 10,000 per exported function, made on the raw functions of
``wxpay_ctypes._native`` (bytes arguments, so that invalid UTF-8 and embedded
NULs reach C as they are), plus a share through the ``wxpay_ctypes`` wrapper
wherever it takes strings or dicts.

Every raw call must be refused: a non-zero code of the API (never
``WXPAY_ERR_PANIC`` or ``WXPAY_ERR_INTERNAL``, never one that only a gateway's
answer can cause), NULL outputs, and, when an error document is asked for, one
whose ``code`` is the returned code and whose ``message`` is not empty. Every
wrapper call must raise its typed error (a :class:`wxpay_ctypes.WxPayError`
whose ``code`` is its class's) with a message. The functions that take nothing
malformable are called as often: ``wxpay_version`` and
``wxpay_result_name``/``_message`` (every kind of int code) must give their
static strings, the frees must accept NULL.

Each malformed input is a valid document with one or more mutations, each of
which alone makes it invalid (the valid documents are checked to be accepted
first); the mutations are those of tests/c/malformed.c: NULL for each pointer,
invalid UTF-8, embedded NULs before which the text is already malformed,
lengths from 0 bytes to 16 MiB (log-distributed, a handful above
``MAX_INPUT_BYTES``), JSON of the wrong type at each field and at the top
level, every kind of bad amount, missing, unknown and duplicated keys,
over-long values, clients of the wrong API generation, and notifications whose
signature, merchant, amount or shape is wrong. The clients have the session's
sandbox as their gateway, and its count of accepted connections must not move.

The generator is seeded (``WXPAY_MALFORMED_SEED``, default below); a failure
names the seed, the call and what was generated, never the input's text.
"""

import ctypes
import json
import os
import sys
import time
from pathlib import Path

import pytest

import wxpay_ctypes
from wxpay_ctypes import _native

# The generator, the valid data and the mutations this test shares with the
# uniffi binding's are in the repository's tests/bindings/malformed_support.py:
# that directory goes on the import path.
SUPPORT_DIR = str(Path(__file__).resolve().parents[3] / "tests" / "bindings")
if SUPPORT_DIR not in sys.path:
    sys.path.insert(0, SUPPORT_DIR)
from malformed_support import (  # noqa: E402
    BAD_API, BAD_API_BASE, BAD_API_V3_KEY, BAD_NON_EMPTY, BAD_PEM, CALLS, HUGE, REFUND_FEE, SEED,
    SIGN_SCHEMES, SIGNED_HEADERS, TRANSACTION_ID, V3_ORDER_FEE, NotificationCatcher, changed_fields,
    log_length, not_flat_message, other_fields_message, padded_message, payment_fields,
    refund_note_fields, rng, signed, spoiled_field, valid_orders, with_byte_changed, xml)

WRAPPER_CALLS = 1500
MAX = wxpay_ctypes.MAX_INPUT_BYTES
HUGE_PER_FUNCTION = 4
SLOW_PER_FUNCTION = 10
SENTINEL = 1
# The codes only a gateway's answer (or an attempt to reach one) can cause.
GATEWAY_CODES = {1201, 1202, 1203, 1204, 1205, 1206}
KNOWN_CODES = {int(code) for code in wxpay_ctypes.ResultCode}

INVALID_UTF8 = [b"\xff", b"\xfe", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                b"\x80", b"\xbf", b"\xc3", b"\xe6\x94", b"\xf0\x9f\x98", b"\xc3\x28"]


def with_invalid_utf8(data, limit=None):
    """``data`` with an invalid UTF-8 sequence inserted before ``limit``, where
    the next byte is ASCII (so the sequence cannot complete a character)."""
    limit = len(data) if limit is None else limit
    at = rng.randint(0, limit)
    while at < limit and data[at] >= 0x80:
        at += 1
    return data[:at] + rng.choice(INVALID_UTF8) + data[at:]


def bad_fen(null_refused):
    """A JSON value that is not an amount of fen from 1 to 2**31-1."""
    choices = [
        lambda: rng.choice(["0", "-0"]),
        lambda: "-{}".format(rng.randint(1, 2 ** 63 - 1)),
        lambda: str(rng.randint(2 ** 31, 2 ** 64 - 1)),
        lambda: rng.choice(["2147483648", "4294967296", "18446744073709551616",
                            "-9223372036854775808"]),
        lambda: str(rng.randint(10 ** 20, 10 ** 60)),
        lambda: rng.choice(["0.01", "1.5", "1e2", "1E2", "1.0", "100.0", "-1.5", "1e-2"]),
        lambda: "{}.{:02d}".format(rng.randint(0, 99999), rng.randint(1, 99)),
        lambda: rng.choice(['"100"', '"1"', '"0.01"', '""', '"abc"']),
        lambda: rng.choice(["true", "false"]),
        lambda: rng.choice(["[]", "[1]", "{}", '{"fen":1}']),
    ]
    if null_refused:
        choices.append(lambda: "null")
    return rng.choice(choices)()


def bad_yuan(null_refused):
    """A JSON value that is not a decimal string of yuan (0.01 to 21474836.47,
    at most two decimals)."""
    choices = [
        lambda: json.dumps(rng.choice([
            "0", "0.00", "-0", "-1", "-0.01", "0.001", "1.234", "21474836.48",
            "99999999999999999999", "NaN", "inf", "-inf", "Infinity", "1e2", "+1", "1,00",
            "0x10", "", "   ", "1.2.3", "abc", "1 0", ".", "1.", "\uff11", "1.\u0000"])),
        lambda: '"{}.{:02d}{}"'.format(rng.randint(0, 999), rng.randint(0, 99), rng.randint(1, 9)),
        lambda: '"{}.{:02d}"'.format(rng.randint(21474837, 10 ** 11), rng.randint(0, 99)),
        lambda: '"-{}.{:02d}"'.format(rng.randint(1, 999), rng.randint(0, 99)),
        lambda: rng.choice(["0.29", "19.99", "1", "100", "0", "-1"]),
        lambda: rng.choice(["true", "false", "[]", '["1.00"]', "{}"]),
    ]
    if null_refused:
        choices.append(lambda: "null")
    return rng.choice(choices)()


# ---------------------------------------------------------------- documents

REQUIRED, NULL, SLOW = 1, 2, 4
WRONG_FOR = {
    "string": ["0", "123", "-1", "1.5", "1e3", "true", "false", "[]", '["x"]', "{}",
               '{"value":"x"}'],
    "integer": ['"30"', '""', "true", "false", "[]", "[30]", "{}", '{"value":30}', "1.5", "-1.5",
                "1e3"],
    "fen": ['"1"', '""', "true", "false", "[]", "[1]", "{}", '{"fen":1}', "1.5", "1e2", "1.0"],
    "yuan": ["1", "19.99", "0.29", "true", "false", "[]", '["1.00"]', "{}"],
    "any": ["1.5", "1e2", "-0.5", "true", "false", "null", "[]", '["x"]', "{}", '{"a":"b"}'],
}


class Field:
    """What the generator knows about a field of a valid document."""

    def __init__(self, kind="string", flags=0, bad=(), max_len=0, long_prefix=""):
        self.kind, self.flags, self.bad = kind, flags, list(bad)
        self.max_len, self.long_prefix = max_len, long_prefix


class Spec:
    """A document type: its fields, whether unknown and duplicated keys are
    refused (header names: case-insensitively), and mutations of its own
    (``extras``: field -> [(name, function(doc, index))])."""

    def __init__(self, argument, fields, unknown_refused=True, duplicates_refused=True,
                 case_insensitive=False, extras=None, any_key=None):
        self.argument, self.fields = argument, fields
        self.unknown_refused, self.duplicates_refused = unknown_refused, duplicates_refused
        self.case_insensitive, self.extras, self.any_key = case_insensitive, extras or {}, any_key

    def field(self, key):
        if self.any_key is not None:
            return self.any_key
        for name, field in self.fields.items():
            if name.lower() == key.lower():
                return field
        return None

    def extras_of(self, key):
        return next((e for name, e in self.extras.items() if name.lower() == key.lower()), [])


def doc_json(doc):
    """A document (a list of [key, raw JSON value]) as JSON text."""
    return "{" + ",".join(json.dumps(k) + ":" + v for k, v in doc) + "}"


def find(doc, key):
    return next((i for i, (k, _) in enumerate(doc) if k == key), -1)


def set_value(doc, key, raw):
    i = find(doc, key)
    if i < 0:
        doc.append([key, raw])
    else:
        doc[i][1] = raw


def json_strings(values):
    """Shared refused values as the JSON strings a document holds."""
    return [json.dumps(v) for v in values]


BAD_NON_EMPTY_JSON = json_strings(BAD_NON_EMPTY)
BAD_ID = ['""', '"A B"', '"A.B"', '"A/B"', '"A\\u0000"', '"\\u8ba2\\u5355"', '"A+B"', '"A#1"',
          '"A%20"', '"A\\n"', '"\\u00c5"']
BAD_PEM_JSON = json_strings(BAD_PEM)


def switch_generation(doc, i):
    """Another generation's name: its own keys are missing from the document."""
    now = doc[find(doc, "api")][1] if find(doc, "api") >= 0 else '"legacy"'
    set_value(doc, "api", rng.choice([g for g in ('"legacy"', '"v2"', '"v3"') if g != now]))


def refused_known_key(doc, i):
    key, raw = rng.choice([("sandbox", '"yes"'), ("token_store_fallback", '"true"'),
                           ("input_charset", '"latin1"'), ("token_store", '"memcached://x"'),
                           ("platform_cert_refresh_secs", '"60"'),
                           ("client_cert", '{"pfx":"x"}')])
    if find(doc, key) < 0:
        doc.append([key, raw])
    else:
        set_value(doc, "timeout_ms", "0")


def key_file(doc, i):
    """API v3: the key both inline and as a file, or only as an unreadable file."""
    missing = '"/nonexistent/wxpay-malformed/apiclient_key.pem"'
    if rng.random() < 0.5:
        doc.remove(doc[find(doc, "merchant_private_key")])
    set_value(doc, "merchant_private_key_file", missing)


CONFIG_FIELDS = {
    "api": Field(flags=REQUIRED | NULL, bad=json_strings(BAD_API)),
    "appid": Field(flags=REQUIRED | NULL, bad=BAD_NON_EMPTY_JSON),
    "notify_url": Field(flags=REQUIRED | NULL, max_len=255, long_prefix="https://example.com/",
                        bad=['""', '"not a url"', '"ftp://example.com/notify"', '"//example.com/n"',
                             '"https://exa mple.com/"', '"https://exa\\u0000mple.com/"']),
    "api_base": Field(bad=json_strings(BAD_API_BASE)),
    "timeout_ms": Field("integer", NULL, ["0", "300001", "18446744073709551616", "-1", "1.5"]),
    "app_secret": Field(flags=REQUIRED | NULL, bad=['""']),
    "app_key": Field(flags=REQUIRED | NULL, bad=['""']),
    "partner_id": Field(flags=REQUIRED | NULL, bad=BAD_NON_EMPTY_JSON),
    "partner_key": Field(flags=REQUIRED | NULL, bad=['""']),
    "mch_id": Field(flags=REQUIRED | NULL, bad=BAD_NON_EMPTY_JSON),
    "api_key": Field(flags=REQUIRED | NULL, bad=['""']),
    "sign_type": Field(flags=NULL, bad=['"SHA1"', '"md5"', '""', '"HMAC_SHA256"']),
    "mchid": Field(flags=REQUIRED | NULL | SLOW, bad=BAD_NON_EMPTY_JSON),
    "merchant_private_key": Field(flags=REQUIRED | NULL, bad=BAD_PEM_JSON),
    "merchant_serial_no": Field(flags=REQUIRED | NULL | SLOW, bad=BAD_NON_EMPTY_JSON),
    "api_v3_key": Field(flags=REQUIRED | NULL | SLOW, bad=json_strings(BAD_API_V3_KEY)),
    "wechatpay_public_key": Field(flags=SLOW, bad=BAD_PEM_JSON),
    "wechatpay_public_key_id": Field(flags=REQUIRED | NULL | SLOW, bad=BAD_NON_EMPTY_JSON),
}
KNOWN_KEY = [("a known key refused", refused_known_key)]
CONFIG_SPECS = {
    # A 2014-flow config has no `api`: the switch goes with appid.
    "legacy": Spec("config_json", CONFIG_FIELDS, extras={
        "appid": [("another generation", switch_generation)], "timeout_ms": KNOWN_KEY}),
    "v2": Spec("config_json", CONFIG_FIELDS, extras={
        "api": [("another generation", switch_generation)], "timeout_ms": KNOWN_KEY}),
    "v3": Spec("config_json", CONFIG_FIELDS, extras={
        "api": [("another generation", switch_generation)], "timeout_ms": KNOWN_KEY,
        "merchant_private_key": [("the key as a file", key_file)]}),
}


def both_amounts(doc, i):
    set_value(doc, "total_yuan", '"0.01"') if find(doc, "total_fee") >= 0 else set_value(
        doc, "total_fee", "1")


def both_ids(doc, i):
    if find(doc, "out_trade_no") >= 0:
        set_value(doc, "transaction_id", '"4200000001202401010000000001"')
    else:
        set_value(doc, "out_trade_no", '"MALFORMED1"')


def enum_form(doc, i):
    doc[i][0] = "OutTradeNo" if doc[i][0] == "out_trade_no" else "TransactionId"


def refund_above_total(doc, i):
    total = rng.randint(1, 2 ** 31 - 2)
    set_value(doc, "total_fee", str(total))
    set_value(doc, "refund_fee", str(rng.randint(total + 1, 2 ** 31 - 1)))


ORDER_SPEC = Spec("order_json", {
    "out_trade_no": Field(flags=REQUIRED | NULL, bad=BAD_ID, max_len=32),
    "total_fee": Field("fen", REQUIRED | NULL),
    "total_yuan": Field("yuan", REQUIRED | NULL),
    "body": Field(flags=REQUIRED | NULL, max_len=128,
                  bad=['""', '"a\\u0001b"', '"line\\nbreak"', '"del\\u007f"', '"nul\\u0000"', '"\\u0085"']),
    "client_ip": Field(flags=REQUIRED | NULL, bad=['""', '"::1"', '"256.1.1.1"', '"1.2.3"', '"1.2.3.4.5"',
                                                   '"localhost"', '" 1.2.3.4"', '"01.2.3.4"']),
    "attach": Field(max_len=127, bad=['"a\\u0001"', '"\\u0000"']),
    "expire_minutes": Field("integer", 0, ["0", "4", "10081", "4294967296", "-1", "1.5"]),
    "traceid": Field(max_len=64, bad=['""', '"a b"', '"\\u00e9"', '"a\\u0001"']),
}, extras={"total_fee": [("both amounts", both_amounts)],
           "total_yuan": [("both amounts", both_amounts)]})
ID_EXTRAS = [("both identifiers", both_ids)]
REF_SPEC = Spec("order_ref_json", {
    "out_trade_no": Field(flags=REQUIRED | NULL, bad=BAD_ID, max_len=32),
    "transaction_id": Field(flags=REQUIRED | NULL, bad=BAD_ID, max_len=32, long_prefix="4200"),
}, extras={"out_trade_no": ID_EXTRAS + [("serde's enum form", enum_form)],
           "transaction_id": ID_EXTRAS + [("serde's enum form", enum_form)]})
REFUND_SPEC = Spec("refund_json", {
    "out_trade_no": Field(flags=REQUIRED | NULL, bad=BAD_ID, max_len=32),
    "transaction_id": Field(flags=REQUIRED | NULL, bad=BAD_ID, max_len=32, long_prefix="4200"),
    "out_refund_no": Field(flags=REQUIRED | NULL, max_len=64, long_prefix="R",
                           bad=['""', '"R 1"', '"\\u9000"', '"R\\u0000"', '"R/1"', '"R.1"']),
    "total_fee": Field("fen", REQUIRED | NULL),
    "refund_fee": Field("fen", REQUIRED | NULL),
    "refund_desc": Field(max_len=80),
}, extras={"out_trade_no": ID_EXTRAS, "transaction_id": ID_EXTRAS,
           "refund_fee": [("refund_fee above total_fee", refund_above_total)]})


def changed_header(doc, i):
    """A Wechatpay-* header with another value (the signature covers the
    timestamp and the nonce, the serial names the key, the timestamp must be
    recent)."""
    value = json.loads(doc[i][1])
    options = [value + "x", value[:rng.randint(0, max(0, len(value) - 1))],
               ("B" if value[:1] == "A" else "A") + value[1:], "AAAA" if value != "AAAA" else "AAAB"]
    if doc[i][0].lower() == "wechatpay-timestamp":
        options += ["0", "1700000000", "-1", "abc", "", "99999999999999999999"]
    doc[i][1] = json.dumps(rng.choice(options))


# The headers a v3 notification is verified with are SIGNED_HEADERS (others,
# such as Wechatpay-Signature-Type, are ignored).
HEADER_SPEC = Spec("headers_json", {
    name: Field(flags=REQUIRED | NULL) for name in
    ("Wechatpay-Serial", "Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce")
}, unknown_refused=False, case_insensitive=True, extras={
    name: [("a Wechatpay-* header changed", changed_header)] for name in
    ("Wechatpay-Serial", "Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce")})
HEADER_SPEC.fields["Content-Type"] = Field(flags=NULL)
PARAMS_SPEC = Spec("params_json", {}, unknown_refused=False, duplicates_refused=False,
                   any_key=Field("any", NULL))


class Call:
    """What one generated call was made of (for the report)."""

    def __init__(self):
        self.parts = []
        self.slow = False

    def note(self, text):
        self.parts.append(text)

    def __str__(self):
        return " + ".join(self.parts) or "-"


def mutate_fields(doc, base, spec, call, slow_ok=False):
    """Applies 1 to 3 structural mutations, each certainly refused, each on a
    field no other one touched or added. Returns how many were applied."""
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
        slow_blocked = field.flags & SLOW and not slow_ok
        how = rng.randrange(8)
        if how == 0 and field.flags & REQUIRED and not slow_blocked:
            del doc[i]
            call.note(key + " removed")
        elif how == 1:
            doc[i][1] = rng.choice(WRONG_FOR[field.kind])
            call.note(key + " of the wrong type")
        elif how == 2 and field.flags & NULL and not slow_blocked:
            doc[i][1] = "null"
            call.note(key + " null")
        elif how == 3 and (field.kind in ("fen", "yuan") or field.bad and not slow_blocked):
            doc[i][1] = (bad_fen(field.flags & NULL) if field.kind == "fen" else
                         bad_yuan(field.flags & NULL) if field.kind == "yuan" else
                         rng.choice(field.bad))
            call.note(key + " refused value")
        elif how == 4 and field.max_len:
            length = field.max_len + 1 + rng.randrange(16) if rng.random() < 0.85 else log_length(
                field.max_len + 1, MAX // 2)
            doc[i][1] = json.dumps(field.long_prefix + "A" * max(1, length - len(field.long_prefix)))
            call.note("{} of {} bytes".format(key, length))
        elif how == 5 and spec.duplicates_refused:
            twin = key.swapcase() if spec.case_insensitive and rng.random() < 0.5 else key
            doc.append([twin, doc[i][1]])
            call.note(key + " twice")
        elif how == 6 and spec.unknown_refused:
            doc.append([rng.choice(["x_malformed", "APPID", "appId", "amount", "sign", "order",
                                    "out_trade_no ", "x\u0001y", "k{:08x}".format(rng.getrandbits(32))]),
                        '"x"'])
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


class Lengths:
    """How many strings above MAX_INPUT_BYTES a function was given so far."""

    def __init__(self):
        self.huge = 0

    def next_huge(self):
        """A length above MAX_INPUT_BYTES while the handful lasts, else None."""
        if self.huge >= HUGE_PER_FUNCTION:
            return None
        self.huge += 1
        return HUGE if self.huge <= 1 else log_length(MAX + 1, HUGE)


def malformed_json(spec, base, call, lengths, slow_ok=False):
    """A malformed JSON argument (bytes, perhaps with an embedded NUL) made
    from ``base``."""
    doc = [list(pair) for pair in base]
    choice = rng.randrange(100)
    if choice < 55:
        while not mutate_fields(doc, base, spec, call, slow_ok):
            doc = [list(pair) for pair in base]
        data = doc_json(doc).encode("utf-8")
        if rng.random() < 0.02:
            data += b" " * (log_length(len(data), 64 * 1024) - len(data))
            call.note("padded to {} bytes".format(len(data)))
    elif choice < 67:
        if rng.random() < 0.5:
            mutate_fields(doc, base, spec, call)
        data = with_invalid_utf8(doc_json(doc).encode("utf-8"))
        call.note("invalid UTF-8")
    elif choice < 79:
        if rng.random() < 0.3:
            mutate_fields(doc, base, spec, call)
        data = doc_json(doc).encode("utf-8")
        at = rng.randrange(len(data))
        data = data[:at] + b"\0" + data[at + 1:]
        call.note("a NUL at byte {}".format(at))
    elif choice < 88:
        text = doc_json(doc)
        how = rng.randrange(6)
        if how == 0:
            text = text[:rng.randrange(len(text))]
        elif how == 1:
            text += rng.choice([" x", "}", ",", "{}", "]", '"'])
        elif how == 2:
            text = text[:-1] + ",}"
        elif how == 3:
            text = "\ufeff" + text
        elif how == 4:
            text = "{'" + text[2:]
        else:
            text = rng.choice(["", " ", "{", "[", "nul", "tru", "'a'", '{"a"}', '{"a":}', "NaN",
                               '"unterminated'])
        data = text.encode("utf-8")
        call.note("not JSON ({})".format(how))
    elif choice < 99:
        inner = doc_json(doc)
        wrapper = '{"document":%s}' if spec.unknown_refused else '{"Wechatpay-Serial":%s}'
        data = rng.choice(["[" + inner + "]", wrapper % inner, json.dumps(inner), "null", "true",
                           "0", "-1.5", "[]", '""', "1e400"]).encode("utf-8")
        call.note("not an object at the top level")
    else:
        applied = mutate_fields(doc, base, spec, call)
        data = doc_json(doc).encode("utf-8")
        if not applied:
            data = b"{," + data[1:]
        length = lengths.next_huge() or log_length(len(data), MAX)
        data += b" " * max(0, length - len(data))
        call.note("{} bytes long".format(len(data)))
    return data


# ---------------------------------------------------------------- judging

class Tally:
    """The calls made to one function and the wrong ones (the first few kept)."""

    def __init__(self, name):
        self.name, self.calls, self.wrong = name, 0, []

    def fail(self, call, detail):
        self.wrong.append("call {} [{}]: {}".format(self.calls, call, detail))

    def check(self, minimum=CALLS):
        assert self.calls >= minimum, "{}: only {} calls".format(self.name, self.calls)
        assert not self.wrong, "{}: {} of {} malformed calls wrong (seed {:#x}):\n{}".format(
            self.name, len(self.wrong), self.calls, SEED, "\n".join(self.wrong[:8]))


def take(pointer):
    """Reads and frees a string the library returned (None for NULL)."""
    if not pointer.value or pointer.value == SENTINEL:
        return None
    try:
        return ctypes.string_at(pointer.value).decode("utf-8", "replace")
    finally:
        _native.lib().wxpay_string_free(pointer)


def judge(tally, call, rc, outputs_null, error):
    """One raw call: ``error`` is the c_void_p passed as out_error, or None."""
    tally.calls += 1
    document = take(error) if error is not None else None
    if rc == 0:
        tally.fail(call, "returned WXPAY_OK")
    elif rc in (1901, 1902):
        tally.fail(call, "returned {}: {}".format(rc, (document or "")[:300]))
    elif rc in GATEWAY_CODES:
        tally.fail(call, "returned {}: the call reached the gateway: {}".format(rc, (document or "")[:300]))
    elif rc not in KNOWN_CODES:
        tally.fail(call, "returned {}, not a result code".format(rc))
    elif not outputs_null:
        tally.fail(call, "an output is not NULL after a failure")
    elif error is not None:
        if error.value == SENTINEL or document is None:
            tally.fail(call, "no error document")
            return
        try:
            parsed = json.loads(document)
        except ValueError:
            tally.fail(call, "the error document is not JSON: " + document[:300])
            return
        if parsed.get("code") != rc or parsed.get("kind") != wxpay_ctypes.result_name(rc):
            tally.fail(call, "the error document's code or kind is not {}: {}".format(rc, document[:300]))
        elif not isinstance(parsed.get("message"), str) or not parsed["message"]:
            tally.fail(call, "the error document has no message: " + document[:300])


def out_pointer():
    return ctypes.c_void_p(SENTINEL)


def maybe_error():
    """An out_error (c_void_p holding a sentinel), or None one call in eight."""
    return None if rng.random() < 0.12 else ctypes.c_void_p(SENTINEL)


def ref(pointer):
    return None if pointer is None else ctypes.byref(pointer)


def expect_wrapper_error(tally, call, body):
    """A wrapper call must raise its typed error, with a message."""
    tally.calls += 1
    try:
        body()
    except wxpay_ctypes.WxPayError as e:
        code = int(e.code) if e.code is not None else None
        if code in (1901, 1902) or code in GATEWAY_CODES:
            tally.fail(call, "{}: {}".format(type(e).__name__, e.message[:300]))
        elif not e.message or code != int(type(e).code or -1):
            tally.fail(call, "{} without a message or with code {}".format(type(e).__name__, code))
    except Exception as e:  # noqa: BLE001 - any other exception is a wrong answer
        tally.fail(call, "raised {}: {}".format(type(e).__name__, str(e)[:300]))
    else:
        tally.fail(call, "returned")


# ---------------------------------------------------------------- setup

def new_client(config):
    handle = ctypes.c_void_p()
    error = ctypes.c_void_p()
    rc = _native.lib().wxpay_client_new(doc_json(config).encode("utf-8"), ctypes.byref(handle),
                                        ctypes.byref(error))
    assert rc == 0, take(error)
    return handle


def as_doc(mapping):
    return [[k, json.dumps(v)] for k, v in mapping.items()]


class World:
    """The valid documents, the clients the malformed calls use, and the
    sandbox's connection count once set up."""


@pytest.fixture(scope="module")
def world(sandbox):
    w = World()
    lib = _native.lib()
    w.sandbox = sandbox
    v3_settings = sandbox.request("GET", "/sandbox/config?api=v3")
    catcher = NotificationCatcher()
    v3_settings["notify_url"] = catcher.url
    w.configs = {"legacy": as_doc(sandbox.config()), "v2": as_doc(sandbox.config_v2()),
                 "v3": as_doc(v3_settings)}
    other = dict(sandbox.config_v2(), mch_id="10000101")
    prefix = "MFP{}T{}".format(os.getpid(), int(time.time()) % 100000)
    w.orders = [as_doc(order) for order in valid_orders(prefix)]
    w.refs = [as_doc({"out_trade_no": prefix + "C"}), as_doc({"transaction_id": TRANSACTION_ID})]
    w.refunds = [
        as_doc({"out_trade_no": "ABUSE1", "out_refund_no": "R1", "total_fee": 2, "refund_fee": 1}),
        as_doc({"transaction_id": TRANSACTION_ID, "out_refund_no": "R-2",
                "total_fee": 1999, "refund_fee": 999, "refund_desc": "退款"}),
    ]
    # Every valid document is accepted: the configs make clients, the other
    # documents reach the gateway, the notifications verify.
    setup = {name: wxpay_ctypes.Client(doc_json(config)) for name, config in w.configs.items()}
    try:
        for order, name in zip(w.orders, ("legacy", "v2", "v3")):
            setup[name].build_pay_params(doc_json(order))
        for document in w.refs + w.refunds:
            arguments = {k: json.loads(v) for k, v in document}
            calls = [setup["v2"].refund] if "out_refund_no" in arguments else [
                setup["v2"].query_order, setup["v3"].query_order, setup["v2"].query_refunds]
            for method in calls:
                try:
                    method(**arguments)
                except wxpay_ctypes.RejectedError:
                    pass  # the gateway's answer: the document got past validation
        with pytest.raises(wxpay_ctypes.RejectedError):
            setup["v2"].close_order("ABUSE1")
        sandbox.pay(prefix + "C")
        headers, w.v3_body = catcher.wait()
        w.headers = [[k, json.dumps(v)] for k, v in headers.items()
                     if k.lower().startswith("wechatpay-") or k.lower() == "content-type"]
        setup["v3"].verify_signed_notification({k: json.loads(v) for k, v in w.headers}, w.v3_body,
                                               V3_ORDER_FEE)
        w.payment_fee = rng.randint(1, 2 ** 31 - 1)
        w.payment = signed(wxpay_ctypes.sign, payment_fields(w.payment_fee))
        setup["v2"].verify_payment_notification(xml(w.payment), w.payment_fee)
        w.refund_note = refund_note_fields()
        setup["v2"].verify_refund_notification(xml(w.refund_note), REFUND_FEE)
    finally:
        catcher.close()
        for client in setup.values():
            client.close()
    # Fresh clients (no pooled connection) for the malformed calls.
    w.raw = {name: new_client(config) for name, config in w.configs.items()}
    w.raw["v2_other"] = new_client(as_doc(other))
    w.wrapped = {name: wxpay_ctypes.Client(doc_json(config)) for name, config in w.configs.items()}
    w.wrapped["v2_other"] = wxpay_ctypes.Client(other)
    w.connections = sandbox.stats()["connections"]
    yield w
    for handle in w.raw.values():
        lib.wxpay_client_free(handle)
    for client in w.wrapped.values():
        client.close()


# ---------------------------------------------------------------- the tests

def test_static_strings_and_null_frees():
    lib = _native.lib()
    version = lib.wxpay_version()
    names = {int(code): code.name[len("WXPAY_"):].lower().replace("err_", "", 1)
             for code in wxpay_ctypes.ResultCode}
    tallies = {name: Tally(name) for name in ("wxpay_version", "wxpay_result_name",
                                              "wxpay_result_message", "wxpay_string_free",
                                              "wxpay_client_free")}
    edges = [-2 ** 31, -2 ** 31 + 1, -1, 1, 999, 1000, 1004, 1100, 1106, 1200, 1207, 1900, 1903,
             2 ** 31 - 1]
    codes = sorted(names) + edges + [
        rng.randint(-2 ** 31, 2 ** 31 - 1) if rng.random() < 0.5 else rng.randint(-500, 2500)
        for _ in range(CALLS)]
    for code in codes[:CALLS]:
        for name in ("wxpay_version", "wxpay_result_name", "wxpay_result_message",
                     "wxpay_string_free", "wxpay_client_free"):
            tallies[name].calls += 1
        if lib.wxpay_version() != version or not version:
            tallies["wxpay_version"].fail(code, "not the same non-empty string")
        expected = names.get(code, "unknown")
        if lib.wxpay_result_name(code).decode() != expected:
            tallies["wxpay_result_name"].fail(code, "not the code's name")
        message = lib.wxpay_result_message(code)
        if not message or (message == b"unknown result code") != (expected == "unknown"):
            tallies["wxpay_result_message"].fail(code, "not the code's message")
        lib.wxpay_string_free(None)
        lib.wxpay_client_free(None)
    for tally in tallies.values():
        tally.check()


def test_client_new(world):
    lib = _native.lib()
    tally = Tally("wxpay_client_new")
    lengths = Lengths()
    slow = 0
    for _ in range(CALLS):
        call = Call()
        generation = rng.choice(["legacy", "v2", "v3"])
        base = world.configs[generation]
        call.note(generation + " config")
        kind = rng.randrange(100)
        config = None
        if kind < 6:
            call.note("NULL config_json")
        else:
            config = malformed_json(CONFIG_SPECS[generation], base, call, lengths,
                                    slow_ok=slow < SLOW_PER_FUNCTION)
            slow += call.slow
        out = out_pointer()
        error = maybe_error()
        if 6 <= kind < 12:
            if rng.random() < 0.5:
                config = doc_json(base).encode("utf-8")
                call.parts = ["a valid config"]
            call.note("NULL out_client")
            rc = lib.wxpay_client_new(config, None, ref(error))
            out = ctypes.c_void_p()
        else:
            rc = lib.wxpay_client_new(config, ctypes.byref(out), ref(error))
        if out.value and out.value != SENTINEL:
            lib.wxpay_client_free(out)
        judge(tally, call, rc, not out.value, error)
    tally.check()

    wrapper = Tally("wxpay_ctypes.Client")
    for _ in range(WRAPPER_CALLS):
        call = Call()
        generation = rng.choice(["legacy", "v2", "v3"])
        data = malformed_json(CONFIG_SPECS[generation], world.configs[generation], call, lengths)
        config = as_str_or_dict(data, call)
        expect_wrapper_error(wrapper, call, lambda: wxpay_ctypes.Client(config))
    wrapper.check(WRAPPER_CALLS)


def as_str_or_dict(data, call):
    """A malformed JSON argument as the wrapper takes it: text (invalid UTF-8
    becomes lone surrogates), or the dict it parses to when it is an object
    without a duplicated key (which a dict would collapse)."""
    text = data.decode("utf-8", "surrogateescape")
    if rng.random() < 0.5 and "twice" not in str(call):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            call.note("as a dict")
            return parsed
    return text


def run_json_function(world, name, spec, bases, clients, wrong_clients):
    """Raw calls of a (client, json, out_json, out_error) function."""
    function = getattr(_native.lib(), name)
    tally = Tally(name)
    lengths = Lengths()
    for _ in range(CALLS):
        call = Call()
        base = rng.choice(bases)
        valid = doc_json(base).encode("utf-8")
        client = world.raw[rng.choice(clients)]
        out = out_pointer()
        out_arg = ctypes.byref(out)
        kind = rng.randrange(100)
        if kind < 4:
            client, arg = None, rng.choice([valid, None])
            call.note("NULL client")
        elif kind < 8:
            arg = None
            call.note("NULL " + spec.argument)
        elif kind < 12:
            arg, out_arg, out = valid, None, ctypes.c_void_p()
            call.note("a valid document, NULL out_json")
        elif kind < 16 and wrong_clients:
            client, arg = world.raw[rng.choice(wrong_clients)], valid
            call.note("a valid document, a client of another API generation")
        else:
            arg = malformed_json(spec, base, call, lengths)
        error = maybe_error()
        rc = function(client, arg, out_arg, ref(error))
        null = not out.value
        take(out)
        judge(tally, call, rc, null, error)
    tally.check()


def test_build_pay_params(world):
    run_json_function(world, "wxpay_build_pay_params", ORDER_SPEC, world.orders,
                      ["legacy", "v2", "v3"], [])
    wrapper = Tally("Client.build_pay_params")
    lengths = Lengths()
    for _ in range(WRAPPER_CALLS):
        call = Call()
        data = malformed_json(ORDER_SPEC, rng.choice(world.orders), call, lengths)
        client = world.wrapped[rng.choice(["legacy", "v2", "v3"])]
        order = as_str_or_dict(data, call)
        expect_wrapper_error(wrapper, call, lambda: client.build_pay_params(order))
    wrapper.check(WRAPPER_CALLS)


def test_query_order(world):
    run_json_function(world, "wxpay_query_order", REF_SPEC, world.refs, ["v2", "v3"], ["legacy"])


def test_query_refunds(world):
    run_json_function(world, "wxpay_query_refunds", REF_SPEC, world.refs, ["v2"], ["legacy", "v3"])


def test_refund(world):
    run_json_function(world, "wxpay_refund", REFUND_SPEC, world.refunds, ["v2", "v3"], ["legacy"])


def bad_identifier():
    return rng.choice([
        "", "A B", "A.B", "A/B", "A\u0000B", "订单", "A\nB", "ÅB", "A" * rng.randint(33, 64),
        "A" * log_length(33, 4096), "{\"out_trade_no\":\"A1\"}"])


def test_identifier_wrappers(world):
    """query_order, query_refunds, close_order and refund through the wrapper,
    with identifiers and amounts it passes on as they are."""
    tally = Tally("Client.query_order/query_refunds/close_order/refund")
    for _ in range(WRAPPER_CALLS):
        call = Call()
        client = world.wrapped[rng.choice(["v2", "v3"])]
        what = rng.randrange(4)
        identifier = bad_identifier()
        key = rng.choice(["out_trade_no", "transaction_id"])
        call.note("method {}, a refused identifier".format(what))
        if what == 0:
            body = lambda: client.query_order(**{key: identifier})  # noqa: E731
        elif what == 1:
            body = lambda: world.wrapped["v2"].query_refunds(**{key: identifier})  # noqa: E731
        elif what == 2:
            body = lambda: client.close_order(identifier)  # noqa: E731
        else:
            amounts = {"total_fee": 2, "refund_fee": 1}
            if rng.random() < 0.5:
                identifier = "MALFORMED1"
                amounts[rng.choice(["total_fee", "refund_fee"])] = rng.choice(
                    [0, -1, 2 ** 31, 2 ** 64, 1.5, "1", True, False, None, [1], {"fen": 1}])
                call.note("a bad amount")
            body = lambda: client.refund(out_refund_no="R1", **{key: identifier}, **amounts)  # noqa: E731
        expect_wrapper_error(tally, call, body)
    tally.check(WRAPPER_CALLS)


def test_sign(world):
    lib = _native.lib()
    tally = Tally("wxpay_sign")
    lengths = Lengths()
    schemes = [(scheme.encode(), key.encode()) for scheme, key in SIGN_SCHEMES]
    bases = [as_doc({"appid": "wx1", "noncestr": "n", "timestamp": 1399514976}),
             as_doc({"bank_type": "WX", "body": "支付测试", "input_charset": "UTF-8", "total_fee": "1"}),
             as_doc({"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "total_fee": 1999})]
    for _ in range(CALLS):
        call = Call()
        s = rng.randrange(4)
        scheme, key = schemes[s]
        base = rng.choice(bases)
        params = doc_json(base).encode("utf-8")
        out = out_pointer()
        out_arg = ctypes.byref(out)
        kind = rng.randrange(100)
        if kind < 12:
            which = rng.randrange(4)
            if which == 0:
                scheme = None
            elif which == 1:
                key = None
            elif which == 2:
                params = None
            else:
                out_arg, out = None, ctypes.c_void_p()
            call.note("NULL argument {}".format(which))
        elif kind < 37:
            scheme = rng.choice([
                scheme.swapcase(), scheme + rng.choice([b" ", b"-", b"x", b"2"]),
                scheme[:rng.randrange(len(scheme))] + b"\0" + scheme,
                rng.choice([b"", b"md5", b"sha1", b"MD5", b"HMAC-SHA256", b"legacy", b"v3-rsa"]),
                with_invalid_utf8(scheme), scheme + b"x" * log_length(1, MAX // 4)])
            call.note("an unknown scheme")
        elif kind < 55:
            huge = lengths.next_huge() if rng.random() < 0.1 else None
            key = rng.choice([b"", b"\0" + key, with_invalid_utf8(key)]) if huge is None else \
                b"k" * huge
            call.note("an empty, unreadable or too long key")
        elif kind < 62 and s <= 1:
            doc = [list(p) for p in base]
            set_value(doc, "appkey" if s == 1 else "input_charset",
                      '"x"' if s == 1 else rng.choice(['"latin1"', '"UTF-16"', '""']))
            params = doc_json(doc).encode("utf-8")
            call.note("a field the scheme refuses")
        else:
            params = malformed_json(PARAMS_SPEC, base, call, lengths)
        error = maybe_error()
        rc = lib.wxpay_sign(scheme, key, params, out_arg, ref(error))
        null = not out.value
        take(out)
        judge(tally, call, rc, null, error)
    tally.check()

    wrapper = Tally("wxpay_ctypes.sign")
    for _ in range(WRAPPER_CALLS):
        call = Call()
        scheme, key = rng.choice(SIGN_SCHEMES)
        params = dict(json.loads(doc_json(rng.choice(bases))))
        how = rng.randrange(4)
        if how == 0:
            scheme = rng.choice(["", "md5", scheme.upper(), scheme + " ", "legacy-sha1\u0000"])
        elif how == 1:
            key = rng.choice(["", "\ud800", "k\u0000"])
        elif how == 2:
            params[rng.choice(list(params))] = rng.choice([1.5, True, None, [1], {"a": "b"}])
        else:
            params = rng.choice(["[]", "null", "{", '{"a":1.5}', "\ud800"])
        call.note("case {}".format(how))
        expect_wrapper_error(wrapper, call, lambda: wxpay_ctypes.sign(scheme, key, params))
    wrapper.check(WRAPPER_CALLS)


def test_close_order(world):
    lib = _native.lib()
    tally = Tally("wxpay_close_order")
    lengths = Lengths()
    bad_chars = [b" ", b".", b"/", b"%", b'"', b"\\", b"+", b"#", b"\t", b"\n", b"\x01", b"\x7f",
                 "订".encode(), "å".encode(), b"="]
    for _ in range(CALLS):
        call = Call()
        number = rng.choice([b"ABUSE1", b"MALFORMED1", b"A-1_2|3*4@5"])
        client = world.raw[rng.choice(["v2", "v3"])]
        kind = rng.randrange(100)
        if kind < 5:
            client = None
            call.note("NULL client")
        elif kind < 10:
            number = None
            call.note("NULL out_trade_no")
        elif kind < 15:
            client = world.raw["legacy"]
            call.note("a 2014-flow client")
        elif kind < 25:
            number = b""
            call.note("empty")
        elif kind < 45:
            at = rng.randint(0, len(number))
            number = number[:at] + rng.choice(bad_chars) + number[at:]
            call.note("a refused character")
        elif kind < 60:
            huge = lengths.next_huge() if rng.random() < 0.05 else None
            number = b"A" * (huge or (33 + rng.randrange(32) if rng.random() < 0.85 else
                                      log_length(33, MAX)))
            call.note("{} characters".format(len(number)))
        elif kind < 72:
            number = with_invalid_utf8(number)
            call.note("invalid UTF-8")
        elif kind < 84:
            at = rng.randrange(len(number))
            number = rng.choice([b"\0" + number, number[:at] + b" \0" + number[at:]])
            call.note("a NUL after nothing or a space")
        else:
            number = rng.choice([b'{"out_trade_no":"ABUSE1"}', b'"ABUSE1"', b'["ABUSE1"]'])
            call.note("JSON instead of a number")
        error = maybe_error()
        rc = lib.wxpay_close_order(client, number, ref(error))
        judge(tally, call, rc, True, error)
    tally.check()


# A payment notification's total_fee that is not an amount.
BAD_TOTAL_FEES = ["0", "-1", "01", "1.5", "1e2", "", " 1", "1 ", "+1", "abc", "2147483648",
                  "99999999999", "１", "0x10", "1999.00"]


def malformed_notification(base, payment, call):
    """A malformed v2 notification body (bytes) made from ``base`` (fields)."""
    kind = rng.randrange(100)
    if kind < 40:
        body, _, change, resign = changed_fields(base, payment, BAD_TOTAL_FEES, wxpay_ctypes.sign)
        call.note(change)
        if resign:
            call.note("signed again")
        return body
    if kind < 55:
        def spoil(key, data):
            if rng.random() < 0.5:
                at = rng.randint(0, len(data))
                call.note("a NUL inside " + key)
                return data[:at] + b"\0" + data[at:]
            call.note("invalid UTF-8 inside " + key)
            return with_invalid_utf8(data)
        return spoiled_field(base, payment, spoil)
    if kind < 75:
        body, what = not_flat_message(base)
    elif kind < 82:
        body, what = padded_message(base, MAX)
    else:
        body, what = other_fields_message(), "a message of other fields"
    call.note(what)
    return body


def run_verify(world, name, payment):
    function = getattr(_native.lib(), name)
    tally = Tally(name)
    lengths = Lengths()
    base = world.payment if payment else world.refund_note
    fee = world.payment_fee if payment else REFUND_FEE
    for _ in range(CALLS):
        call = Call()
        body = xml(base).encode("utf-8")
        length = len(body)
        client = world.raw["v2"]
        expected = fee if rng.random() < 0.5 else -rng.randrange(3)
        out = out_pointer()
        out_arg = ctypes.byref(out)
        kind = rng.randrange(100)
        if kind < 4:
            client = None
            call.note("NULL client")
        elif kind < 8:
            body, length = None, rng.choice([0, rng.randint(1, 1 << 20)])
            call.note("NULL body")
        elif kind < 11:
            out_arg, out = None, ctypes.c_void_p()
            call.note("NULL out_json")
        elif kind < 16:
            client = world.raw[rng.choice(["v3", "legacy"] if payment else ["v3", "legacy", "v2_other"])]
            call.note("a client of another API generation or merchant")
        elif kind < 24:
            if rng.random() < 0.5:
                other = rng.randint(1, 2 ** 31 - 2)
                expected = other + 1 if other >= fee else other
            else:
                expected = rng.choice([rng.randint(2 ** 31, 2 ** 63 - 1), 2 ** 63 - 1, 2 ** 32])
            call.note("expected {} fen".format(expected))
        elif kind < 28:
            body = rng.choice([b"<", body])
            length = rng.choice([MAX + 1 + rng.randrange(64), rng.randint(MAX + 1, 2 ** 64 - 1)])
            call.note("a length past the buffer")
        elif kind < 32:
            length = rng.randrange(len(body))
            call.note("a length short of the body")
        elif kind < 34 and lengths.huge < HUGE_PER_FUNCTION:
            body = b"<" * lengths.next_huge()
            length = len(body)
            call.note("{} bytes".format(length))
        else:
            body = malformed_notification(base, payment, call)
            length = len(body)
        error = maybe_error()
        rc = function(client, body, length, expected, out_arg, ref(error))
        null = not out.value
        take(out)
        judge(tally, call, rc, null, error)
    tally.check()


def test_verify_payment_notification(world):
    run_verify(world, "wxpay_verify_payment_notification", True)


def test_verify_refund_notification(world):
    run_verify(world, "wxpay_verify_refund_notification", False)


def test_notification_wrappers(world):
    """The wrapper's verifiers, with malformed bodies (bytes or str) and amounts."""
    tally = Tally("Client.verify_*_notification")
    for _ in range(WRAPPER_CALLS):
        call = Call()
        which = rng.randrange(3)
        if which == 2:
            headers = {k: json.loads(v) for k, v in world.headers}
            body = world.v3_body
            expected = V3_ORDER_FEE
            how = rng.randrange(4)
            if how == 0:
                body = body[:-1] + bytes([body[-1] ^ 1])
            elif how == 1:
                name = rng.choice([k for k in headers if k.lower() in SIGNED_HEADERS])
                headers[name] = headers[name] + "x"
            elif how == 2:
                del headers[rng.choice([k for k in headers if k.lower() in SIGNED_HEADERS])]
            else:
                expected = rng.choice([1, V3_ORDER_FEE + 1, 2 ** 31])
            call.note("v3 case {}".format(how))
            expect_wrapper_error(tally, call, lambda: world.wrapped["v3"].verify_signed_notification(
                headers, body, expected))
            continue
        payment = which == 0
        base = world.payment if payment else world.refund_note
        body = malformed_notification(base, payment, call)
        if rng.random() < 0.3:
            body = body.decode("utf-8", "surrogateescape")  # invalid UTF-8: lone surrogates
            call.note("as a str")
        expected = rng.choice([None, world.payment_fee if payment else REFUND_FEE, 2 ** 31])
        method = (world.wrapped["v2"].verify_payment_notification if payment else
                  world.wrapped["v2"].verify_refund_notification)
        expect_wrapper_error(tally, call, lambda: method(body, expected))
    tally.check(WRAPPER_CALLS)


def test_verify_signed_notification(world):
    lib = _native.lib()
    tally = Tally("wxpay_verify_signed_notification")
    lengths = Lengths()
    valid_headers = doc_json(world.headers).encode("utf-8")
    for _ in range(CALLS):
        call = Call()
        client = world.raw["v3"]
        headers = valid_headers
        body = world.v3_body
        length = None
        expected = V3_ORDER_FEE if rng.random() < 0.5 else -rng.randrange(3)
        out = out_pointer()
        out_arg = ctypes.byref(out)
        kind = rng.randrange(100)
        if kind < 3:
            client = None
            call.note("NULL client")
        elif kind < 6:
            headers = None
            call.note("NULL headers_json")
        elif kind < 9:
            body, length = None, rng.choice([0, len(body)])
            call.note("NULL body")
        elif kind < 12:
            out_arg, out = None, ctypes.c_void_p()
            call.note("NULL out_json")
        elif kind < 16:
            client = world.raw[rng.choice(["v2", "legacy"])]
            call.note("a client of another API generation")
        elif kind < 24:
            other = rng.randint(1, 2 ** 31 - 2)
            expected = rng.choice([other + 1 if other >= V3_ORDER_FEE else other,
                                   rng.randint(2 ** 31, 2 ** 63 - 1)])
            call.note("expected {} fen".format(expected))
        elif kind < 28:
            body = rng.choice([b"{", body])
            length = rng.choice([MAX + 1 + rng.randrange(64), rng.randint(MAX + 1, 2 ** 64 - 1)])
            call.note("a length past the buffer")
        elif kind < 55:
            how = rng.randrange(6)
            if how == 0:
                body = with_byte_changed(body)
            elif how == 1:
                body = body[:rng.randrange(len(body))]
            elif how == 2:
                body = body + rng.choice([b" ", b"\n", b"x", b"}", b"\r\n"])
            elif how == 3:
                at = rng.randint(0, len(body))
                body = body[:at] + b"\0" + body[at:]
            elif how == 4:
                body = with_invalid_utf8(body)
            else:
                huge = lengths.next_huge()
                body = body + b" " * (huge or log_length(1, 64 * 1024))
            call.note("the body changed ({})".format(how))
        else:
            headers = malformed_json(HEADER_SPEC, world.headers, call, lengths)
        error = maybe_error()
        rc = lib.wxpay_verify_signed_notification(
            client, headers, body, len(body) if length is None else length, expected, out_arg,
            ref(error))
        null = not out.value
        take(out)
        judge(tally, call, rc, null, error)
    tally.check()


def test_download_certificates_and_replies(world):
    lib = _native.lib()
    certificates = Tally("wxpay_download_certificates")
    success = Tally("wxpay_notification_success_reply")
    failure = Tally("wxpay_notification_failure_reply")
    lengths = Lengths()
    for _ in range(CALLS):
        call = Call()
        count = ctypes.c_int32(7)
        how = rng.randrange(4)
        client = [None, world.raw[rng.choice(list(world.raw))], world.raw["legacy"],
                  world.raw[rng.choice(["v2", "v2_other"])]][how]
        count_arg = None if how == 1 else ctypes.byref(count)
        call.note(["NULL client", "NULL out_count", "a 2014-flow client", "an API v2 client"][how])
        error = maybe_error()
        rc = lib.wxpay_download_certificates(client, count_arg, ref(error))
        judge(certificates, call, rc, how == 1 or count.value == 0, error)

        call = Call()
        how = rng.randrange(3)
        reply = out_pointer()
        client = None if how != 1 else world.raw[rng.choice(list(world.raw))]
        reply_arg = None if how else ctypes.byref(reply)
        if how:
            reply = ctypes.c_void_p()
        call.note(["NULL client", "NULL out_reply", "NULL client and out_reply"][how])
        error = maybe_error()
        rc = lib.wxpay_notification_success_reply(client, reply_arg, ref(error))
        null = not reply.value
        take(reply)
        judge(success, call, rc, null, error)

        call = Call()
        client = world.raw[rng.choice(list(world.raw))]
        reason = rng.choice([b"", b"busy, try again", "系统繁忙".encode(), b"x]]><a>"])
        reply = out_pointer()
        reply_arg = ctypes.byref(reply)
        kind = rng.randrange(100)
        if kind < 10:
            client = None
            call.note("NULL client")
        elif kind < 20:
            reason = None
            call.note("NULL reason")
        elif kind < 30:
            reply_arg, reply = None, ctypes.c_void_p()
            call.note("NULL out_reply")
        elif kind < 98:
            reason = with_invalid_utf8(reason) + rng.choice([b"", b"\0after the NUL"])
            call.note("invalid UTF-8")
        else:
            reason = b"r" * (lengths.next_huge() or MAX + 1 + rng.randrange(4096))
            call.note("{} bytes".format(len(reason)))
        error = maybe_error()
        rc = lib.wxpay_notification_failure_reply(client, reason, reply_arg, ref(error))
        null = not reply.value
        take(reply)
        judge(failure, call, rc, null, error)
    for tally in (certificates, success, failure):
        tally.check()

    wrapper = Tally("Client.download_certificates/notification_failure_reply")
    for _ in range(WRAPPER_CALLS):
        call = Call()
        name = rng.choice(["legacy", "v2", "v2_other"])
        if rng.random() < 0.5:
            call.note("download_certificates on a {} client".format(name))
            expect_wrapper_error(wrapper, call, world.wrapped[name].download_certificates)
        else:
            reason = rng.choice(["\ud800", "busy\udfff", "x" * (MAX + 1 + rng.randrange(64))])
            call.note("a reason with a lone surrogate or too long")
            expect_wrapper_error(wrapper, call,
                                 lambda: world.wrapped[name].notification_failure_reply(reason))
    wrapper.check(WRAPPER_CALLS)


def test_no_malformed_call_reached_the_sandbox(world):
    """Runs last: the sandbox accepted no connection since the setup but this
    request's own."""
    assert world.sandbox.stats()["connections"] == world.connections + 1
