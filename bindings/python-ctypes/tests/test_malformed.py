"""Runs the malformed-call corpus (tests/malformed/generate.py; its format:
tests/malformed/corpus.py) through libwxpay's C API by ctypes: every call on
the raw functions of ``wxpay_ctypes._native`` (bytes arguments, so that
invalid UTF-8 and embedded NULs reach C as they are), and one in
WRAPPER_SHARE of the calls with a typed form that the library must refuse
through the ``wxpay_ctypes`` wrapper (dicts, str, keyword arguments).

The corpus is generated for conftest's ``sandbox``, the gateway of every
client, into the cargo target directory. Its valid calls must be accepted.
Each malformed raw call must be refused with a code of the API (never
``WXPAY_ERR_PANIC`` or ``WXPAY_ERR_INTERNAL``, never one only a gateway's
answer can cause), NULL outputs, and, when an error document is asked for,
one whose ``code`` is the returned code and whose ``message`` is not empty;
the functions that take nothing malformable must give their static strings
or accept NULL; each function must get exactly the calls the corpus counts
(at least 10,000). Each wrapper call must raise its typed error (a
:class:`wxpay_ctypes.WxPayError` whose ``code`` is its class's) with a
message. The sandbox's count of accepted connections must not move. A
failure names the corpus line and what it was made of, never the input.
"""

import ctypes
import json
import os
import sys
from pathlib import Path

import pytest

import wxpay_ctypes
from wxpay_ctypes import _native

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "malformed"))
import corpus  # noqa: E402
import generate  # noqa: E402

SENTINEL = 1
KNOWN_CODES = {int(code) for code in wxpay_ctypes.ResultCode}
WRAPPER_SHARE = 2
WRAPPER_CALLS = 1000


@pytest.fixture(scope="module")
def malformed(sandbox):
    path = os.path.join(corpus.target_dir(), "malformed", "ctypes.corpus")
    generate.generate(sandbox.base_url, path)
    return corpus.Corpus(path)


@pytest.fixture
def handles(malformed):
    """A fresh raw client (no pooled connection) per configuration of the corpus."""
    lib, made = _native.lib(), {}
    for name, config in malformed.configs.items():
        handle, error = ctypes.c_void_p(), ctypes.c_void_p()
        rc = lib.wxpay_client_new(config, ctypes.byref(handle), ctypes.byref(error))
        assert rc == 0, "{}: {}".format(name, _native.take_string(error))
        made[corpus.Client(name)] = handle
    yield made
    for handle in made.values():
        lib.wxpay_client_free(handle)


def raw_call(record, handles):
    """Makes the call: (its code, its outputs, its out_error or None)."""
    passed, outputs, error = [], [], None
    for arg in record.args:
        if arg is corpus.OUT:
            outputs.append(ctypes.c_int32(7) if record.function == "wxpay_download_certificates"
                           else ctypes.c_void_p(SENTINEL))
            passed.append(ctypes.byref(outputs[-1]))
        elif arg is corpus.ERR:
            error = ctypes.c_void_p(SENTINEL)
            passed.append(ctypes.byref(error))
        else:
            passed.append(handles[arg] if isinstance(arg, corpus.Client) else arg)
    return getattr(_native.lib(), record.function)(*passed), outputs, error


def take(record, outputs, error):
    """Frees what the call returned: (whether every output is NULL, the error
    document or None, whether one was asked for and left untouched)."""
    lib = _native.lib()
    for out in outputs:
        if isinstance(out, ctypes.c_void_p) and out.value not in (None, SENTINEL):
            new = record.function == "wxpay_client_new"
            (lib.wxpay_client_free if new else lib.wxpay_string_free)(out)
    untouched = error is not None and error.value == SENTINEL
    document = None if error is None or untouched else _native.take_string(error)
    return all(not out.value for out in outputs), document, untouched


def judge(record, tally, handles):
    """Makes one call and judges it against its verdict."""
    lib = _native.lib()
    verdict = record.verdict
    if verdict in ("same", "void") or verdict.startswith("name=") or verdict.endswith("known"):
        code = (record.args or [0])[0]
        if verdict == "same":
            ok = lib.wxpay_version() == lib.wxpay_version() != b""
        elif verdict == "void":
            ok = getattr(lib, record.function)(None) is None
        elif verdict.startswith("name="):
            ok = lib.wxpay_result_name(code).decode() == verdict[5:]
        else:
            message = lib.wxpay_result_message(code)
            ok = bool(message) and (message == b"unknown result code") == (verdict == "unknown")
        return ok or tally.fail(record, "not the expected static result")
    rc, outputs, error = raw_call(record, handles)
    null, document, untouched = take(record, outputs, error)
    if rc == 0 or rc in (1901, 1902) or rc in corpus.GATEWAY_CODES or rc not in KNOWN_CODES:
        return tally.fail(record, "returned {}: {}".format(rc, (document or "")[:300]))
    if not null:
        return tally.fail(record, "an output is not NULL after a failure")
    if error is None:
        return None
    parsed = json.loads(document) if document else {}
    if untouched or not document:
        tally.fail(record, "no error document")
    elif parsed.get("code") != rc or parsed.get("kind") != wxpay_ctypes.result_name(rc):
        tally.fail(record, "the error document's code or kind is not {}: {}".format(
            rc, document[:300]))
    elif not isinstance(parsed.get("message"), str) or not parsed["message"]:
        tally.fail(record, "the error document has no message: " + document[:300])


def test_valid_calls_are_accepted(malformed, handles):
    tally = corpus.Tally("valid calls")
    for record in malformed.records():
        if record.verdict not in ("ok", "reach"):
            break
        tally.calls += 1
        rc, outputs, error = raw_call(record, handles)
        _, document, _ = take(record, outputs, error)
        if rc != 0 and not (record.verdict == "reach" and rc == 1206):
            tally.fail(record, "returned {}: {}".format(rc, (document or "")[:300]))
    assert tally.calls and not tally.wrong, "\n".join(tally.shown)


def test_malformed_calls_are_refused(malformed, handles):
    before = corpus.sandbox_connections(malformed.sandbox)
    tallies = {name: corpus.Tally(name) for name in malformed.counts}
    for record in malformed.records():
        if record.verdict not in ("ok", "reach"):
            tally = tallies[record.function]
            tally.calls += 1
            judge(record, tally, handles)
    after = corpus.sandbox_connections(malformed.sandbox)
    report, passed = [], True
    for name, tally in tallies.items():
        lines, ok = tally.verdict(malformed.counts[name][0], "malformed")
        report += lines
        passed &= ok
    print("\n".join(report))
    assert len(tallies) == 18 and passed, "seed {:#x}:\n{}".format(
        malformed.seed, "\n".join(report))
    # The second count's own connection is the only new one.
    assert after == before + 1, "{} connections reached the sandbox".format(after - before - 1)


def plain(value):
    if isinstance(value, corpus.TypedRecord):
        return {k: plain(v) for k, v in value.items()}
    return value


def wrapper_call(typed, wrapped):
    """The wrapper's call of a typed form (an OrderRef as keyword arguments)."""
    args = [plain(a) for a in typed.args]
    if typed.method == "WxPayClient":
        return lambda: wxpay_ctypes.Client(args[0]).close()
    if typed.method == "sign":
        return lambda: wxpay_ctypes.sign(*args)
    method = getattr(wrapped[typed.client], typed.method)
    if typed.method == "refund":
        fields = dict(args[0])
        kind, value = fields.pop("order")
        return lambda: method(**{kind: value}, **fields)
    if typed.method in ("query_order", "query_refunds"):
        kind, value = args[0]
        return lambda: method(**{kind: value})
    return lambda: method(*args)


def test_wrapper_calls_are_refused(malformed):
    wrapped = {name: wxpay_ctypes.Client(config.decode())
               for name, config in malformed.configs.items()}
    before = corpus.sandbox_connections(malformed.sandbox)
    tallies = {}
    for number, record in enumerate(malformed.records()):
        typed = corpus.typed(record.function, record.args) if number % WRAPPER_SHARE == 0 else None
        if record.verdict != "refuse" or typed is None or typed.binding:
            continue
        tally = tallies.setdefault(typed.method, corpus.Tally("wxpay_ctypes " + typed.method))
        tally.calls += 1
        try:
            wrapper_call(typed, wrapped)()
        except wxpay_ctypes.WxPayError as e:
            code = int(e.code) if e.code is not None else None
            if code in (1901, 1902) or code in corpus.GATEWAY_CODES:
                tally.fail(record, "{}: {}".format(type(e).__name__, e.message[:300]))
            elif not e.message or code != int(type(e).code or -1):
                tally.fail(record, "{} without a message or with code {}".format(
                    type(e).__name__, code))
        except Exception as e:  # noqa: BLE001 - any other exception is a wrong answer
            tally.fail(record, "raised {}: {}".format(type(e).__name__, str(e)[:300]))
        else:
            tally.fail(record, "returned")
    after = corpus.sandbox_connections(malformed.sandbox)
    for client in wrapped.values():
        client.close()
    report = ["{}: {} calls, {} wrong".format(t.name, t.calls, t.wrong) for t in tallies.values()]
    print("\n".join(report))
    assert len(tallies) >= 11 and all(t.calls >= WRAPPER_CALLS and not t.wrong
                                      for t in tallies.values()), "\n".join(
        report + [line for t in tallies.values() for line in t.shown])
    assert after == before + 1, "{} connections reached the sandbox".format(after - before - 1)
