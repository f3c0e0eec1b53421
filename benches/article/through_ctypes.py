#!/usr/bin/env python3
"""The article's orders through libwxpay from Python (``wxpay_ctypes``), and the
cost of a ctypes call: part of scripts/bench.sh (BENCHMARKS.md).

- ``--legacy N``: ``wxpay_ctypes.legacy.get_prepaid_result`` with the arguments
  get_prepaid_result.py gives the article's function (same merchant, GBK,
  total_pay ``"19.99"``, body, client IP); one cached client per configuration;
- ``--client N``: ``Client.build_pay_params`` on one client made beforehand;
- ``--sign N``: ``wxpay_ctypes.sign("legacy-sha1", ...)`` (the dict to JSON,
  the key encoded, the C call, the decode and free), a bare ctypes call
  (``wxpay_version()``), and the article's ``createSHA1Signature`` in pure
  Python on the same parameters.

The library comes from ``WXPAY_LIB``. One JSON line per measurement.

    WXPAY_LIB=target/release/libwxpay.so PYTHONPATH=bindings/python-ctypes \\
        python3 benches/article/through_ctypes.py --api-base http://127.0.0.1:PORT --legacy 300
"""

import argparse
import json
import os
import sys
import time
import urllib.request

import wxpay_ctypes
from wxpay_ctypes import _native
from wxpay_ctypes.legacy import get_prepaid_result

APP_KEY = "L8LrMqqeGRxST5reouB0K66CaYAWpqhAVsq7ggKkxHCOastWksvuX1uvmvQclxaHoYd3ElNBrNO2DHnnzgfVG9Qs473M3DTOZug5er46FhuGofumV8H2FVR9qkjSlC5K"
# The app's final-sign parameters: the same as examples/sign_timing.rs and benches/c/sign_loop.c.
PARAMS = {
    "appid": "wxd930ea5d5a258f4f",
    "noncestr": "e7d161ac8d8a76529d39d9f5b4249ccb",
    "package": "Sign=WXPay",
    "partnerid": "1900000109",
    "prepayid": "1101000000140429eb40476f8896f4c9",
    "timestamp": "1399514976",
}


def percentile(sorted_values, p):
    """The same rule as `wxpay load`: the value at index len*p/100."""
    if not sorted_values:
        return 0
    return sorted_values[min(len(sorted_values) * p // 100, len(sorted_values) - 1)]


def sandbox_config(api_base):
    with urllib.request.urlopen(api_base + "/sandbox/config") as answer:
        config = json.load(answer)
    config["input_charset"] = "GBK"  # as the article's package
    return config


def summary(name, latencies, elapsed_ns, failures, extra=None):
    latencies.sort()
    out = {
        "impl": name,
        "orders": len(latencies),
        "ok": len(latencies) - failures,
        "failed": failures,
        "elapsed_ms": elapsed_ns // 1_000_000,
        "orders_per_sec": round(len(latencies) * 1e9 / max(elapsed_ns, 1), 1),
        "latency_us": {
            "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99),
            "max": latencies[-1] if latencies else 0,
        },
    }
    out.update(extra or {})
    print(json.dumps(out, ensure_ascii=False), flush=True)


def run_legacy(args):
    config = sandbox_config(args.api_base)
    latencies, failures = [], 0
    started = time.perf_counter_ns()
    for i in range(args.legacy):
        t = time.perf_counter_ns()
        result = get_prepaid_result(config, "%sL%d" % (args.prefix, i), args.amount, args.body, args.client_ip)
        latencies.append((time.perf_counter_ns() - t) // 1000)
        if result["status"] != 0:
            failures += 1
    elapsed = time.perf_counter_ns() - started
    summary("wxpay_ctypes.legacy.get_prepaid_result (drop-in, cached client)", latencies, elapsed, failures)


def run_client(args):
    config = sandbox_config(args.api_base)
    latencies, failures = [], 0
    with wxpay_ctypes.Client(config) as client:
        started = time.perf_counter_ns()
        for i in range(args.client):
            t = time.perf_counter_ns()
            try:
                client.build_pay_params(
                    {
                        "out_trade_no": "%sC%d" % (args.prefix, i),
                        "total_yuan": args.amount,
                        "body": args.body,
                        "client_ip": args.client_ip,
                    }
                )
            except wxpay_ctypes.WxPayError:
                failures += 1
            latencies.append((time.perf_counter_ns() - t) // 1000)
        elapsed = time.perf_counter_ns() - started
    summary("wxpay_ctypes.Client.build_pay_params (one client)", latencies, elapsed, failures)


def time_ns(op, iterations):
    """The median over 7 batches of the mean ns per call."""
    for _ in range(max(iterations // 10, 1)):
        op()
    means = []
    for _ in range(7):
        t = time.perf_counter_ns()
        for _ in range(iterations):
            op()
        means.append((time.perf_counter_ns() - t) / iterations)
    means.sort()
    return means[3]


def run_sign(args):
    lib = _native.lib()
    expected = wxpay_ctypes.sign("legacy-sha1", APP_KEY, PARAMS)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import get_prepaid_result as article  # noqa: E402 (needs requests, as the article)

    article.config.update({"partnerKey": "", "paySignKey": APP_KEY, "api_base": ""})
    handler = article.WeixinRequestHandler("x")
    with_key = dict(PARAMS, appkey=APP_KEY)
    if handler.createSHA1Signature(with_key) != expected:
        raise SystemExit("the article's SHA1 and libwxpay's differ")
    n = args.sign
    for name, op, iterations in [
        ("Python ctypes: wxpay_version() (bare call)", lib.wxpay_version, n * 5),
        (
            "Python ctypes: wxpay_ctypes.sign(legacy-sha1)",
            lambda: wxpay_ctypes.sign("legacy-sha1", APP_KEY, PARAMS),
            n,
        ),
        ("Python: the article's createSHA1Signature (hashlib)", lambda: handler.createSHA1Signature(with_key), n),
    ]:
        print(json.dumps({"impl": name, "ns_per_op": round(time_ns(op, iterations))}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-base")
    parser.add_argument("--legacy", type=int, default=0, metavar="N")
    parser.add_argument("--client", type=int, default=0, metavar="N")
    parser.add_argument("--sign", type=int, default=0, metavar="N")
    parser.add_argument("--prefix", default="P%d" % (os.getpid() % 100000))
    parser.add_argument("--amount", default="19.99")
    parser.add_argument("--body", default="支付测试")
    parser.add_argument("--client-ip", default="196.168.1.1")
    args = parser.parse_args()
    if (args.legacy or args.client) and not args.api_base:
        parser.error("--legacy and --client need --api-base")
    if args.legacy:
        run_legacy(args)
    if args.client:
        run_client(args)
    if args.sign:
        run_sign(args)


if __name__ == "__main__":
    main()
