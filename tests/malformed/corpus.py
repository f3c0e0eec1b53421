"""The malformed-call corpus of libwxpay's C ABI: its line format, a reader,
the typed form of each call (how the uniffi bindings express it), and the
tallies the Python runners print. tests/malformed/generate.py writes a
corpus; tests/c/malformed.c, bindings/python-ctypes/tests/test_malformed.py
and tests/bindings/test_malformed_uniffi.py run it. Standard library only.

The format: text, one record a line, fields separated by one space.

    wxpay-malformed-corpus 1
    seed 0x77787061794d414c            the generator's seed
    sandbox http://127.0.0.1:PORT      the gateway of every client
    fragment NAME BYTES                a byte string BYTES tokens name as $NAME
    client NAME BYTES                  a valid configuration; the runners make
                                       a client of it (for the valid calls, then
                                       a fresh one for the malformed calls)
    VERDICT FUNCTION ARG... [# WHAT]   one call, with its arguments in C order
    count FUNCTION CALLS TYPED         after the calls: how many calls of
                                       FUNCTION (not counting the valid ones),
                                       and how many of them have a typed form

ARG is `-` (NULL), `@NAME` (the client NAME), `o` (an output pointer), `e`
(an out_error pointer), `=N` (an integer), or `'SEG+SEG...` (bytes; none: the
empty string), each SEG a literal (bytes outside `!`..`~`, and `%+*$#`, as
%XX), a run `*HH.N` (N bytes of hex value HH: strings of up to 16 MiB stay
one token), or `$NAME` (a fragment). C reads a string argument up to its
first NUL; a body is read for the length that follows it.

VERDICT: `ok` (the call succeeds), `reach` (it succeeds or the gateway
refuses it: it got past validation), `refuse` (a malformed call: refused
with a code of the API that is not WXPAY_ERR_PANIC, WXPAY_ERR_INTERNAL or a
gateway's, its outputs NULL, its error document naming the code with a
message), `same` (wxpay_version: the same non-empty static string),
`name=NAME` (wxpay_result_name gives NAME), `known`/`unknown`
(wxpay_result_message gives a code's sentence / "unknown result code"),
`void` (a free of NULL returns). WHAT says what the call was made of, never
the input's text (it holds keys).
"""

import json
import os
import re
import urllib.parse
import urllib.request

# Malformed calls per function and runner (the typed ones too, for the
# functions the typed bindings have).
CALLS = 10000
MAX_INPUT_BYTES = 1 << 20
# The codes only a gateway's answer (or an attempt to reach one) can cause.
GATEWAY_CODES = {1201, 1202, 1203, 1204, 1205, 1206}
FIRST_LINE = "wxpay-malformed-corpus 1"


class Client(str):
    """An argument naming a client of the corpus."""


class Pointer(str):
    """An argument that is an output pointer (`o`) or an out_error one (`e`)."""


OUT, ERR = Pointer("o"), Pointer("e")

# ---------------------------------------------------------------- bytes tokens

_UNSAFE = re.compile(rb"[^!-~]|[%+*$#]")
_BLOCK = 2048
_BLOCKS = {}


def _literal(data):
    return _UNSAFE.sub(lambda m: b"%%%02X" % m[0][0], data).decode("ascii")


def _runs(data):
    """The (start, end) of the runs of one byte that hold one of the 2 KiB
    blocks a scan steps through: every run of 4 KiB or more, some shorter."""
    i = 0
    while i + _BLOCK <= len(data):
        block = _BLOCKS.get(data[i]) or _BLOCKS.setdefault(data[i], bytes([data[i]]) * _BLOCK)
        if not data.startswith(block, i):
            i += _BLOCK
            continue
        head, end = data[max(0, i - _BLOCK):i], i + _BLOCK
        while data.startswith(block, end):
            end += _BLOCK
        tail = data[end:end + _BLOCK]
        end += len(tail) - len(tail.lstrip(block[:1]))
        yield i - len(head) + len(head.rstrip(block[:1])), end
        i = end


def encode_bytes(data, fragments):
    """The token of ``data``: runs of one byte (of 4 KiB or more), and the
    ``fragments`` ({name: bytes}) in what is left, are named, not spelled."""
    pieces, at = [], 0
    for start, end in _runs(data):
        pieces += [data[at:start], "*{:02x}.{}".format(data[start], end - start)]
        at = end
    pieces.append(data[at:])
    for name, fragment in fragments.items():
        split = []
        for piece in pieces:
            if isinstance(piece, bytes):
                parts = piece.split(fragment)
                split += [x for part in parts for x in (part, "$" + name)][:-1]
            else:
                split.append(piece)
        pieces = split
    return "'" + "+".join(p if isinstance(p, str) else _literal(p) for p in pieces if p)


def decode_bytes(token, fragments):
    out = []
    for segment in token[1:].split("+") if len(token) > 1 else ():
        if segment[0] == "*":
            value, count = segment[1:].split(".")
            out.append(bytes([int(value, 16)]) * int(count))
        elif segment[0] == "$":
            out.append(fragments[segment[1:]])
        else:
            out.append(urllib.parse.unquote_to_bytes(segment))
    return b"".join(out)


def encode_arg(value, fragments):
    if value is None:
        return "-"
    if isinstance(value, Pointer):
        return str(value)
    if isinstance(value, Client):
        return "@" + value
    if isinstance(value, int):
        return "={}".format(value)
    return encode_bytes(value, fragments)


def decode_arg(token, fragments):
    first = token[0]
    if first == "-":
        return None
    if first == "@":
        return Client(token[1:])
    if first == "=":
        return int(token[1:])
    if first == "'":
        return decode_bytes(token, fragments)
    return {"o": OUT, "e": ERR}[token]


# ---------------------------------------------------------------- reading

class Record:
    """One call of the corpus (its arguments decoded on demand)."""

    def __init__(self, corpus, line, text):
        self.corpus, self.line = corpus, line
        text, _, self.what = text.partition(" # ")
        self.verdict, self.function, *self.tokens = text.split(" ")

    @property
    def args(self):
        return [decode_arg(token, self.corpus.fragments) for token in self.tokens]

    def __str__(self):
        return "corpus line {} [{}]".format(self.line, self.what or "-")


class Corpus:
    """A corpus file: its header and counts (read at once) and its records
    (read again on each pass)."""

    def __init__(self, path):
        self.path, self.fragments, self.configs, self.counts = path, {}, {}, {}
        with open(path, encoding="ascii") as f:
            if f.readline().rstrip("\n") != FIRST_LINE:
                raise ValueError("{} is not a malformed-call corpus".format(path))
            for line in f:
                kind, _, rest = line.rstrip("\n").partition(" ")
                if kind == "seed":
                    self.seed = int(rest, 0)
                elif kind == "sandbox":
                    self.sandbox = rest
                elif kind in ("fragment", "client"):
                    name, token = rest.split(" ")
                    table = self.fragments if kind == "fragment" else self.configs
                    table[name] = decode_bytes(token, self.fragments)
                elif kind == "count":
                    name, calls, typed = rest.split(" ")
                    self.counts[name] = (int(calls), int(typed))

    def records(self):
        with open(self.path, encoding="ascii") as f:
            for number, line in enumerate(f, 1):
                if line.split(" ", 1)[0] not in HEADER_KINDS:
                    yield Record(self, number, line.rstrip("\n"))


HEADER_KINDS = {FIRST_LINE.split(" ")[0], "seed", "sandbox", "fragment", "client", "count"}


def sandbox_connections(base_url):
    """The sandbox's count of accepted connections."""
    with urllib.request.urlopen(base_url + "/sandbox/stats", timeout=10) as reply:
        return json.loads(reply.read())["connections"]


class Tally:
    """The calls a runner made to one function, and the wrong ones (the first
    few kept, with the record and what was wrong)."""

    def __init__(self, name):
        self.name, self.calls, self.wrong, self.shown = name, 0, 0, []

    def fail(self, record, detail):
        self.wrong += 1
        if len(self.shown) < 5:
            self.shown.append("WRONG {}, {}: {}".format(self.name, record, detail))

    def verdict(self, expected, prefix):
        """The report lines, and whether the function passed: no wrong call,
        and exactly the ``expected`` calls (at least CALLS)."""
        lines = ["{}: {}: {} calls, {} wrong".format(prefix, self.name, self.calls, self.wrong)]
        ok = self.wrong == 0 and self.calls == expected >= CALLS
        if self.calls != expected or expected < CALLS:
            lines.append("{}: {}: {} calls made, the corpus holds {} (at least {} wanted)".format(
                prefix, self.name, self.calls, expected, CALLS))
        return lines + self.shown, ok


# ---------------------------------------------------------------- typed form
# How the typed bindings (uniffi) express a call: records for the JSON
# documents, OrderRef for an order reference, str for a string, bytes for a
# body, an optional u32 for an expected amount. A call has a typed form only
# when the typed call is what C is given:
#   - a NULL output pointer has none (typed calls return their output);
#   - a NULL input is None and a NULL client a method called on None: the
#     binding refuses both;
#   - a string is what C reads (up to its first NUL), as UTF-8 (invalid bytes
#     become lone surrogates, which the binding refuses to encode); nothing
#     longer than WXPAY_MAX_INPUT_BYTES (the typed API has no such limit: a
#     call refused only for its length would succeed there);
#   - a JSON document must parse (invalid UTF-8 inside its strings as above)
#     to an object without a key twice whose keys are fields of the record
#     and whose required fields are there; `null` has no typed form (None is
#     an absent field); a value of the wrong type is passed as it is, and the
#     binding refuses it (an int out of its range too), except a JSON boolean
#     where an int is wanted and anything but a boolean for a boolean (the
#     binding would read them as 1 and as true), and a client_cert that is
#     not an object;
#   - wxpay_sign's params and the API v3 headers are a map of str to str (an
#     integer param is its decimal text: the same signature);
#   - a body is the bytes of its length (not longer than the buffer);
#   - an expected amount of 0 or less is None (not checked).
# The typed form also says who must refuse it: the binding (a value its
# types cannot carry) or the library.

TEXT, U32, U64, FLAG, CERT, REF = "text", "u32", "u64", "flag", "cert", "ref"
RECORDS = {
    "Config": ({"appid": TEXT, "notify_url": TEXT, "app_secret": TEXT, "app_key": TEXT,
                "partner_id": TEXT, "partner_key": TEXT, "api_base": TEXT, "input_charset": TEXT,
                "timeout_ms": U64, "token_store": TEXT, "token_store_fallback": FLAG, "api": TEXT,
                "mch_id": TEXT, "api_key": TEXT, "sign_type": TEXT, "client_cert": CERT,
                "sandbox": FLAG, "mchid": TEXT, "merchant_private_key": TEXT,
                "merchant_private_key_file": TEXT, "merchant_serial_no": TEXT, "api_v3_key": TEXT,
                "wechatpay_public_key": TEXT, "wechatpay_public_key_file": TEXT,
                "wechatpay_public_key_id": TEXT, "platform_cert_refresh_secs": U64},
               {"appid", "notify_url"}),
    "ClientCert": (dict.fromkeys(["cert_pem_file", "key_pem_file", "pem", "pkcs12_file",
                                  "pkcs12_password"], TEXT), set()),
    "Order": ({"out_trade_no": TEXT, "total_fee": U32, "total_yuan": TEXT, "body": TEXT,
               "client_ip": TEXT, "attach": TEXT, "expire_minutes": U32, "traceid": TEXT},
              {"out_trade_no", "body", "client_ip"}),
    "RefundRequest": ({"order": REF, "out_refund_no": TEXT, "total_fee": U32, "refund_fee": U32,
                       "refund_desc": TEXT}, {"order", "out_refund_no", "total_fee", "refund_fee"}),
}
REF_KEYS = ("out_trade_no", "transaction_id")


class Inexpressible(Exception):
    """The call has no typed form."""


class Typed:
    """A typed call: ``method`` of the client named ``client`` (None: called
    on None), or the constructor ``WxPayClient`` or the function ``sign``
    (``client`` unused), with ``args``; ``binding``: the binding must refuse
    it, else the library (or, for a valid call, accept it)."""

    def __init__(self, method, args, client=None):
        self.method, self.args, self.client = method, args, client
        self.binding = False


class TypedRecord(dict):
    """A typed record: its name and fields (a dict)."""

    def __init__(self, name, fields):
        super().__init__(fields)
        self.name = name


class Ref(tuple):
    """A typed OrderRef: (kind, value), kind one of REF_KEYS."""


def _no_twice(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise Inexpressible("a key twice")
    return dict(pairs)


def _no_constant(name):
    raise Inexpressible(name)


class _Mapper:
    def __init__(self):
        self.binding = False

    def refused_if(self, condition):
        self.binding |= bool(condition)

    def text(self, value):
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                self.binding = True
        else:
            self.binding = True
        return value

    def cstring(self, data):
        if data is None:
            self.binding = True
            return None
        data = data.split(b"\0", 1)[0]
        if len(data) > MAX_INPUT_BYTES:
            raise Inexpressible("longer than WXPAY_MAX_INPUT_BYTES")
        return self.text(data.decode("utf-8", "surrogateescape"))

    def document(self, data):
        text = self.cstring(data)
        if text is None:
            return None
        try:
            value = json.loads(text, object_pairs_hook=_no_twice, parse_constant=_no_constant)
        except ValueError:
            raise Inexpressible("not JSON") from None
        if not isinstance(value, dict):
            raise Inexpressible("not an object")
        return value

    def value(self, kind, value):
        if value is None:
            raise Inexpressible("null")
        if kind in (U32, U64):
            if isinstance(value, bool):
                raise Inexpressible("a boolean for an int")
            self.refused_if(not isinstance(value, int) or not 0 <= value < 1 << int(kind[1:]))
            return value
        if kind == FLAG:
            if not isinstance(value, bool):
                raise Inexpressible("not a boolean for a boolean")
            return value
        if kind == CERT:
            if not isinstance(value, dict):
                raise Inexpressible("client_cert not an object")
            return self.record("ClientCert", value)
        if kind == REF:
            return self.ref(value)
        return self.text(value)

    def record(self, name, doc):
        if doc is None:
            return None
        fields, required = RECORDS[name]
        if name == "RefundRequest":
            if "order" in doc:
                raise Inexpressible("a key the record does not have")
            ids = [k for k in REF_KEYS if k in doc]
            if len(ids) != 1:
                raise Inexpressible("not exactly one order identifier")
            doc = dict(doc, order={ids[0]: doc[ids[0]]})
            del doc[ids[0]]
        if not set(doc) <= set(fields) or not required <= set(doc):
            raise Inexpressible("a key the record does not have, or a required one missing")
        return TypedRecord(name, {k: self.value(fields[k], v) for k, v in doc.items()})

    def ref(self, doc):
        if doc is None:
            return None
        if len(doc) != 1 or next(iter(doc)) not in REF_KEYS:
            raise Inexpressible("not one order identifier")
        (kind, value), = doc.items()
        if value is None:
            raise Inexpressible("null")
        return Ref((kind, self.text(value)))

    def mapping(self, doc, ints_as_text):
        """A map of str to str (wxpay_sign's params take integers too: the
        same signature as their decimal text)."""
        if doc is None:
            return None
        out = {}
        for key, value in doc.items():
            if value is None:
                raise Inexpressible("null")
            if ints_as_text and isinstance(value, int) and not isinstance(value, bool):
                if not 0 <= value < 1 << 63:
                    raise Inexpressible("an integer out of range")
                value = str(value)
            out[self.text(key)] = self.text(value)
        return out

    def body(self, data, length):
        if data is None:
            self.binding = True
            return None
        if length > len(data) or length > MAX_INPUT_BYTES:
            raise Inexpressible("a length past the buffer or the input limit")
        return data[:length]

    def expected(self, fee):
        if fee <= 0:
            return None
        self.refused_if(fee >= 1 << 32)
        return fee

    def client(self, client):
        self.refused_if(client is None)
        return client


def _out(pointer):
    if pointer is not OUT:
        raise Inexpressible("a NULL output pointer")


def _typed_new(m, config, out, error):
    _out(out)
    return Typed("WxPayClient", [m.record("Config", m.document(config))])


def _typed_json(method, convert):
    def typed(m, client, document, out, error):
        _out(out)
        return Typed(method, [convert(m, m.document(document))], m.client(client))
    return typed


def _typed_verify(method):
    def typed(m, client, body, length, fee, out, error):
        _out(out)
        return Typed(method, [m.body(body, length), m.expected(fee)], m.client(client))
    return typed


def _typed_signed(m, client, headers, body, length, fee, out, error):
    _out(out)
    return Typed("verify_signed_notification",
                 [m.mapping(m.document(headers), False), m.body(body, length), m.expected(fee)],
                 m.client(client))


def _typed_sign(m, scheme, key, params, out, error):
    _out(out)
    return Typed("sign", [m.cstring(scheme), m.cstring(key), m.mapping(m.document(params), True)])


def _typed_no_args(method):
    def typed(m, client, out, error):
        _out(out)
        return Typed(method, [], m.client(client))
    return typed


_TYPED = {
    "wxpay_client_new": _typed_new,
    "wxpay_build_pay_params": _typed_json("build_pay_params", lambda m, d: m.record("Order", d)),
    "wxpay_query_order": _typed_json("query_order", lambda m, d: m.ref(d)),
    "wxpay_query_refunds": _typed_json("query_refunds", lambda m, d: m.ref(d)),
    "wxpay_refund": _typed_json("refund", lambda m, d: m.record("RefundRequest", d)),
    "wxpay_sign": _typed_sign,
    "wxpay_close_order": lambda m, client, number, error: Typed(
        "close_order", [m.cstring(number)], m.client(client)),
    "wxpay_verify_payment_notification": _typed_verify("verify_payment_notification"),
    "wxpay_verify_refund_notification": _typed_verify("verify_refund_notification"),
    "wxpay_verify_signed_notification": _typed_signed,
    "wxpay_download_certificates": _typed_no_args("download_certificates"),
    "wxpay_notification_success_reply": _typed_no_args("notification_success_reply"),
    "wxpay_notification_failure_reply": lambda m, client, reason, out, error: (
        _out(out), Typed("notification_failure_reply", [m.cstring(reason)], m.client(client)))[1],
}
# The functions of the C ABI the typed bindings have (as methods of
# WxPayClient, its constructor, or `sign`); the others (wxpay_version,
# wxpay_result_name/_message and the frees) have no typed form.
TYPED_FUNCTIONS = set(_TYPED)


def typed(function, args):
    """The typed form of a call of ``function`` with ``args`` (as the corpus
    holds them), or None when it has none."""
    if function not in _TYPED:
        return None
    mapper = _Mapper()
    try:
        call = _TYPED[function](mapper, *args)
    except Inexpressible:
        return None
    call.binding = mapper.binding
    return call


def target_dir():
    """The cargo target directory (CARGO_TARGET_DIR honoured)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(root, os.environ.get("CARGO_TARGET_DIR") or "target")
