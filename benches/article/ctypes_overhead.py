#!/usr/bin/env python3
"""What the wxpay_ctypes wrapper adds to a call of libwxpay: each wrapped call
is timed against the same C function called straight through ctypes (arguments
already encoded, out-pointers passed, the answer read, decoded and freed).

- ``wxpay_sign``: ``wxpay_ctypes.sign("legacy-sha1", key, dict)`` and with the
  parameters as JSON text, against ``lib.wxpay_sign`` on prepared bytes;
- ``wxpay_build_pay_params``: ``Client.build_pay_params(dict)`` against
  ``lib.wxpay_build_pay_params`` on the same client handle with prepared
  JSON bytes (then ``json.loads``, as the caller would), against a ``wxpay
  sandbox`` (``--api-base``, else one started from ``WXPAY_BIN`` or
  ``target/debug/wxpay`` and stopped at exit). Each order has its own number.

For signing, runs alternate between the direct and the wrapped calls, and a
figure is the median over the runs of the mean CPU time per call; for orders, the two
calls alternate order by order, and a figure is the median latency (wall
time, and this thread's CPU time). Prints a table and one JSON line per
figure; it asserts nothing about time.

    WXPAY_LIB=target/debug/libwxpay.so PYTHONPATH=bindings/python-ctypes \\
        python3 benches/article/ctypes_overhead.py [--sign N] [--orders N] [--api-base URL]
"""

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import wxpay_ctypes
from wxpay_ctypes import _native

# The app's final-sign parameters and key, as in benches/c/sign_loop.c.
from through_ctypes import APP_KEY, PARAMS

ROOT = Path(__file__).resolve().parents[2]
SCHEME = "legacy-sha1"
PARAMS_TEXT = json.dumps(PARAMS, separators=(",", ":"))


def direct(function, *args):
    """``function(*args, &out, &error)`` straight through ctypes: the output
    as text (read, decoded, freed)."""
    lib = _native.lib()
    out, error = ctypes.c_void_p(), ctypes.c_void_p()
    code = function(*args, ctypes.byref(out), ctypes.byref(error))
    if code != 0:
        lib.wxpay_string_free(error)
        raise SystemExit("{} failed with code {}".format(function.__name__, code))
    try:
        return ctypes.string_at(out.value).decode("utf-8")
    finally:
        lib.wxpay_string_free(out)


def alternate(ops, iterations, runs):
    """The median over ``runs`` of the mean ns per call of each op, in CPU
    time of this thread (other processes' load on the machine left out), the
    ops taking turns run by run (after a warm-up of each)."""
    means = {name: [] for name, _ in ops}
    for _, op in ops:
        for _ in range(max(iterations // 10, 1)):
            op()
    for _ in range(runs):
        for name, op in ops:
            started = time.thread_time_ns()
            for _ in range(iterations):
                op()
            means[name].append((time.thread_time_ns() - started) / iterations)
    return {name: sorted(values)[len(values) // 2] for name, values in means.items()}


def report(title, figures, base, unit="ns per call"):
    """The figures, and for each the difference to ``base`` (the direct call);
    names in parentheses are for scale only."""
    print("{} ({})".format(title, unit))
    for name, ns in figures.items():
        extra = "" if name == base or name.startswith("(") else "  {:+8.0f} ns".format(
            ns - figures[base])
        print("  {:<58} {:>9.0f} ns{}".format(name, ns, extra))
    for name, ns in figures.items():
        line = {"measure": title, "unit": unit, "impl": name, "ns": round(ns)}
        if name != base and not name.startswith("("):
            line["over_direct_ns"] = round(ns - figures[base])
        print(json.dumps(line, ensure_ascii=False))
    sys.stdout.flush()


def bench_sign(iterations, runs):
    lib = _native.lib()
    scheme, key, params = SCHEME.encode(), APP_KEY.encode(), PARAMS_TEXT.encode()
    expected = direct(lib.wxpay_sign, scheme, key, params)
    if wxpay_ctypes.sign(SCHEME, APP_KEY, PARAMS) != expected:
        raise SystemExit("wxpay_ctypes.sign and wxpay_sign differ")
    ops = [
        ("direct ctypes: lib.wxpay_sign(bytes...)", lambda: direct(lib.wxpay_sign, scheme, key, params)),
        ("wxpay_ctypes.sign(scheme, key, dict)", lambda: wxpay_ctypes.sign(SCHEME, APP_KEY, PARAMS)),
        ("wxpay_ctypes.sign(scheme, key, JSON text)",
         lambda: wxpay_ctypes.sign(SCHEME, APP_KEY, PARAMS_TEXT)),
        ("(a bare ctypes call: lib.wxpay_version())", lib.wxpay_version),
    ]
    report("wxpay_sign", alternate(ops, iterations, runs), ops[0][0],
           "CPU time per call, median of {} runs of {}".format(runs, iterations))


def order(prefix, i):
    return {"out_trade_no": "{}{}".format(prefix, i), "total_yuan": "19.99",
            "body": "支付测试", "client_ip": "196.168.1.1"}


def bench_build_pay_params(api_base, orders, runs):
    """Per-call latencies, the direct and the wrapped call taking turns order
    by order (the network's noise falls on both alike): the median wall time
    and the median CPU time of this thread (the library's own work in it is
    the same for both, and what other processes do is left out)."""
    with urllib.request.urlopen(api_base + "/sandbox/config") as answer:
        config = json.load(answer)
    lib = _native.lib()
    prefix = "OH{}T{}".format(os.getpid() % 10000, int(time.time()) % 100000)
    names = ("direct ctypes: lib.wxpay_build_pay_params(handle, bytes)",
             "Client.build_pay_params(dict)")
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    with wxpay_ctypes.Client(config) as client:
        handle = client._handle  # the same client for both: one token, one pool
        client.build_pay_params(order(prefix + "X", 0))  # token and connection ready
        for run in range(runs):
            # The documents are made beforehand: the direct call does no JSON work.
            documents = [json.dumps(order("{}D{}_".format(prefix, run), i)).encode()
                         for i in range(orders)]
            wrapped = [order("{}W{}_".format(prefix, run), i) for i in range(orders)]
            for i in range(orders):
                # Which goes first changes every order.
                for which in ((0, 1) if i % 2 else (1, 0)):
                    started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
                    if which == 0:
                        json.loads(direct(lib.wxpay_build_pay_params, handle, documents[i]))
                    else:
                        client.build_pay_params(wrapped[i])
                    cpu[names[which]].append(time.thread_time_ns() - started_cpu)
                    wall[names[which]].append(time.perf_counter_ns() - started)
    calls = len(wall[names[0]])
    for figures, unit in ((wall, "median wall time of {} calls"),
                          (cpu, "median CPU time of this thread, {} calls")):
        medians = {name: sorted(values)[len(values) // 2] for name, values in figures.items()}
        report("wxpay_build_pay_params against the sandbox", medians, names[0], unit.format(calls))


def start_sandbox():
    """A ``wxpay sandbox --port 0`` and its base URL (its first line of output,
    which goes to a file: nobody has to keep reading a pipe)."""
    binary = os.environ.get("WXPAY_BIN") or str(ROOT / "target" / "debug" / "wxpay")
    output = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen([binary, "sandbox", "--port", "0"], stdin=subprocess.DEVNULL,
                               stdout=output, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        output.seek(0)
        text = output.read()
        if "\n" in text:
            line = text.split("\n", 1)[0].strip()
            if line.startswith("http://"):
                return process, line
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise SystemExit("wxpay sandbox ({}) gave no base URL".format(binary))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sign", type=int, default=20000, metavar="N", help="calls per run")
    parser.add_argument("--orders", type=int, default=300, metavar="N",
                        help="orders per run and kind of call (0: none)")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--api-base", help="a running wxpay sandbox (else one is started)")
    args = parser.parse_args()
    print("libwxpay {} at {}".format(wxpay_ctypes.version(), os.environ.get("WXPAY_LIB", "(found)")))
    if args.sign:
        bench_sign(args.sign, args.runs)
    if args.orders:
        process = None
        api_base = args.api_base
        if not api_base:
            process, api_base = start_sandbox()
        try:
            bench_build_pay_params(api_base, args.orders, args.runs)
        finally:
            if process is not None:
                process.terminate()
                process.wait()


if __name__ == "__main__":
    main()
