#!/usr/bin/env python3
"""Runs the malformed-call corpus (tests/malformed/generate.py; its format:
tests/malformed/corpus.py) through the uniffi Python binding
(bindings/python/wxpay.py): every call of a function the binding has
(WxPayClient, its methods, sign) that has a typed form, at least 10,000 per
function. The typed form (corpus.typed) is the binding's call with what C is
given: records for the JSON documents, None for a NULL input, a method
called on None for a NULL client. What the binding cannot express is not
counted: a NULL output pointer, a length other than the buffer's or above
WXPAY_MAX_INPUT_BYTES, a document that is not a JSON object, holds a key
twice, a key the record lacks or `null`; and wxpay_version,
wxpay_result_name/_message and the frees, which the binding does not have.

    python3 tests/bindings/test_malformed_uniffi.py CORPUS

The valid calls must be accepted (those that only have to get past
validation may be refused by the gateway: Rejected). Each malformed call
must raise with a message: where its typed form holds a value the binding's
types cannot carry, the binding's TypeError, ValueError (an int out of
range, a lone surrogate) or AttributeError (None for a record, a method
called on None); else the library's WxPayError, never Internal (a caught
panic) nor a variant only a gateway's answer can cause. Each function must
get exactly the typed calls the corpus counts for it, and the corpus's
sandbox, the gateway of every client, must accept no connection during the
malformed calls.

The binding is loaded as tests/bindings/test_wxpay.py loads it. Prints the
seed, one line per function, the first wrong calls with their corpus line
and what they were made of (never the input's text: it holds keys), and last
"uniffi-malformed: N passed, M failed"; exits 1 on any failure. Run by
scripts/check-uniffi.sh, which generates the corpus.
"""

import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "malformed"))
import corpus  # noqa: E402
from test_wxpay import import_binding  # noqa: E402

BINDING_ERRORS = (TypeError, ValueError, AttributeError)
# Internal (a caught panic), and what only a gateway's answer can cause.
WRONG_VARIANTS = {"Internal", "Network", "HttpStatus", "Gateway", "MalformedResponse", "TokenStore",
                  "Rejected"}
# Most calls must reach the library, except for the replies' (the binding
# refuses each: a method called on None, None for a reason, a lone surrogate).
LIBRARY_SHARE = 0.6
BINDING_ONLY = {"wxpay_notification_success_reply", "wxpay_notification_failure_reply"}


def build(wx, value):
    """A typed value as the binding's object."""
    if isinstance(value, corpus.TypedRecord):
        return getattr(wx, value.name)(**{k: build(wx, v) for k, v in value.items()})
    if isinstance(value, corpus.Ref):
        return getattr(wx.OrderRef, value[0].upper())(value[1])
    return value


def outcome(wx, typed, clients):
    """Makes the typed call: ("ok" | "binding" | "library", the exception's
    class name, its message), or raises what else it raised."""
    args = [build(wx, a) for a in typed.args]
    if typed.method == "WxPayClient":
        call = lambda: wx.WxPayClient(*args)  # noqa: E731
    elif typed.method == "sign":
        call = lambda: wx.sign(*args)  # noqa: E731
    else:
        method = getattr(wx.WxPayClient, typed.method)
        call = lambda: method(clients.get(typed.client), *args)  # noqa: E731
    try:
        call()
    except wx.WxPayError as e:
        return "library", type(e).__name__, getattr(e, "message", "") or str(e)
    except BINDING_ERRORS as e:
        return "binding", type(e).__name__, str(e)
    return "ok", "", ""


def judge(wx, record, typed, clients, tally):
    try:
        kind, name, message = outcome(wx, typed, clients)
    except Exception as e:  # noqa: BLE001 - anything else is a wrong answer
        return tally.fail(record, "raised {}: {}".format(type(e).__name__, str(e)[:300]))
    if record.verdict in ("ok", "reach"):
        if kind != "ok" and (record.verdict, kind, name) != ("reach", "library", "Rejected"):
            tally.fail(record, "{} {}: {}".format(kind, name, message[:300]))
    elif kind != ("binding" if typed.binding else "library") or name in WRONG_VARIANTS:
        tally.fail(record, "expected the {} to refuse it; {}: {}: {}".format(
            "binding" if typed.binding else "library", kind, name, message[:300]))
    elif not message:
        tally.fail(record, "{} without a message".format(name))
    return kind


def new_clients(wx, configs):
    """A client per configuration of the corpus (fresh: no pooled connection)."""
    clients = {}
    for name, config in configs.items():
        typed = corpus.typed("wxpay_client_new", [config, corpus.OUT, corpus.ERR])
        clients[name] = wx.WxPayClient(*[build(wx, a) for a in typed.args])
    return clients


def run(wx, path):
    malformed = corpus.Corpus(path)
    print("uniffi-malformed: seed {:#x} (corpus {}; set WXPAY_MALFORMED_SEED to change it)".format(
        malformed.seed, path), flush=True)
    clients, before = new_clients(wx, malformed.configs), None
    valid = corpus.Tally("valid calls")
    tallies = {name: corpus.Tally(name) for name in sorted(corpus.TYPED_FUNCTIONS)}
    by_binding = dict.fromkeys(tallies, 0)
    for record in malformed.records():
        if record.function not in corpus.TYPED_FUNCTIONS:
            continue
        typed = corpus.typed(record.function, record.args)
        if record.verdict in ("ok", "reach"):
            valid.calls += 1
            if typed is None or typed.binding:
                valid.fail(record, "a valid call the binding does not express")
            else:
                judge(wx, record, typed, clients, valid)
            continue
        if before is None:
            clients = new_clients(wx, malformed.configs)
            before = corpus.sandbox_connections(malformed.sandbox)
        if typed is not None:
            tally = tallies[record.function]
            tally.calls += 1
            by_binding[record.function] += judge(wx, record, typed, clients, tally) == "binding"
    after = corpus.sandbox_connections(malformed.sandbox)
    passed = failed = 0
    print("uniffi-malformed: {} valid calls, {} wrong".format(valid.calls, valid.wrong))
    for line in valid.shown:
        print("  " + line)
    if valid.wrong or not valid.calls:
        failed += 1
    for name, tally in tallies.items():
        lines, ok = tally.verdict(malformed.counts[name][1], "uniffi-malformed")
        lines[0] += " ({} refused by the binding)".format(by_binding[name])
        library = tally.calls - by_binding[name]
        if name not in BINDING_ONLY and library < LIBRARY_SHARE * tally.calls:
            ok = False
            lines.append("only {} of {} calls reached the library".format(library, tally.calls))
        print("\n  ".join(lines))
        passed, failed = passed + ok, failed + (not ok)
    # The second count's own connection is the only new one.
    if before is None or after != before + 1:
        print("uniffi-malformed: the sandbox accepted {} connections during the malformed "
              "calls".format(after - (before or 0) - 1))
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
        return run(import_binding(tmp), argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
