"""ctypes calls into libwxpay under valgrind (PYTHONMALLOC=malloc, so
valgrind sees every allocation): no error and no definite leak may be
attributed to libwxpay. CPython's own reports are not this test's business."""

import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import PACKAGE_ROOT

SCRIPT = textwrap.dedent(
    """
    import json, sys, urllib.request
    import wxpay_ctypes
    from wxpay_ctypes import legacy

    base = sys.argv[1]
    config = json.load(urllib.request.urlopen(base + "/sandbox/config"))
    with wxpay_ctypes.Client(config) as client:
        for i in range(3):
            client.build_pay_params({"out_trade_no": "VG%d" % i, "total_yuan": "0.29",
                                     "body": "valgrind", "client_ip": "1.2.3.4"})
        for bad in ({"total_yuan": "0.001"}, {"total_fee": 0}):
            try:
                client.build_pay_params(dict(bad, out_trade_no="VGBAD", body="b",
                                             client_ip="1.2.3.4"))
            except wxpay_ctypes.InvalidOrderError:
                pass
            else:
                raise SystemExit("an invalid order was accepted")
    try:
        wxpay_ctypes.Client({"appid": 1})
    except wxpay_ctypes.InvalidConfigError:
        pass
    else:
        raise SystemExit("an invalid configuration was accepted")
    assert wxpay_ctypes.sign("legacy-sha1", "K", {"a": "1"})
    try:
        wxpay_ctypes.sign("md5", "K", {"a": "1"})
    except wxpay_ctypes.InvalidArgumentError:
        pass
    else:
        raise SystemExit("an unknown signing scheme was accepted")
    assert legacy.get_prepaid_result(config, "VGL", 0.29, "b", "1.2.3.4")["status"] == 0
    legacy.clear_cache()

    config_v2 = json.load(urllib.request.urlopen(base + "/sandbox/config?api=v2"))
    with wxpay_ctypes.Client(config_v2) as client:
        client.build_pay_params({"out_trade_no": "VGV2", "total_fee": 1, "body": "valgrind",
                                 "client_ip": "1.2.3.4"})
        assert client.query_order(out_trade_no="VGV2")["trade_state"] == "NOTPAY"
        client.close_order("VGV2")
        refused = (
            lambda: client.query_refunds(out_trade_no="VGV2"),
            lambda: client.refund(out_trade_no="VGV2", out_refund_no="R", total_fee=1,
                                  refund_fee=2),
            lambda: client.verify_payment_notification(b"<xml></xml>", 1),
            lambda: client.verify_refund_notification(b"<xml><a>1</a></xml>"),
        )
        for call in refused:
            try:
                call()
            except wxpay_ctypes.WxPayError as error:
                assert error.reply is None or "FAIL" in error.reply
            else:
                raise SystemExit("a v2 call that must fail succeeded")
        assert "SUCCESS" in client.notification_success_reply()
        assert "FAIL" in client.notification_failure_reply("busy")
    print("ok")
    """
)


def error_records(log: str):
    """The valgrind log split into records (one error or leak each)."""
    records, current = [], []
    for line in log.splitlines():
        text = re.sub(r"^==\d+==\s?", "", line)
        if text.strip():
            current.append(text)
        elif current:
            records.append("\n".join(current))
            current = []
    if current:
        records.append("\n".join(current))
    return records


# Frames of Rust code: in this process that is libwxpay and nothing else. With
# debug info valgrind names source files, not the object, so look for both.
RUST_FRAME = re.compile(
    r"libwxpay|wxpay::|\bwxpay_\w+ \(|library/(?:core|alloc|std)/src/|\.cargo/registry/"
)


def ours(log: str):
    """The records of the log that involve libwxpay. Only definite leaks are
    shown (--show-leak-kinds=definite), so each is an error or a definite leak."""
    return [r for r in error_records(log) if RUST_FRAME.search(r)]


def run_under_valgrind(script: str, args, tmp_path):
    log_file = tmp_path / "valgrind.log"
    env = dict(os.environ)
    env["PYTHONMALLOC"] = "malloc"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PACKAGE_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    completed = subprocess.run(
        [
            "valgrind",
            "--leak-check=full",
            "--show-leak-kinds=definite",
            "--errors-for-leak-kinds=definite",
            "--num-callers=50",
            "--log-file={}".format(log_file),
            # The interpreter itself, not a wrapper script (pyenv shims are
            # shell scripts valgrind would stop at).
            sys.executable,
            "-c",
            script,
        ]
        + list(args),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=600,
    )
    if os.environ.get("WXPAY_LOG"):
        # The library's log lines, for whoever reads this run's output (pytest -s).
        sys.stderr.write(completed.stderr.decode(errors="replace"))
    return completed, log_file.read_text(errors="replace")


needs_valgrind = pytest.mark.skipif(
    shutil.which("valgrind") is None, reason="valgrind is not installed"
)


@needs_valgrind
def test_ctypes_calls_are_clean_under_valgrind(sandbox, tmp_path):
    completed, log = run_under_valgrind(SCRIPT, [sandbox.base_url], tmp_path)
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")[-3000:]
    assert completed.stdout.decode().strip().endswith("ok")
    assert "ERROR SUMMARY" in log
    found = ours(log)
    assert not found, "valgrind errors in libwxpay:\n\n" + "\n\n".join(found)


CANARY = textwrap.dedent(
    """
    import ctypes
    from wxpay_ctypes import _native

    lib = _native.lib()
    out, err = ctypes.c_void_p(), ctypes.c_void_p()
    assert lib.wxpay_sign(b"legacy-sha1", b"K", b'{"a":"1"}', ctypes.byref(out),
                          ctypes.byref(err)) == 0
    lib.wxpay_string_free(out)
    lib.wxpay_string_free(out)  # a deliberate double free, for valgrind to catch
    print("ok")
    """
)


@needs_valgrind
def test_the_check_above_does_see_errors_in_libwxpay(tmp_path):
    # Valgrind intercepts free(), so the double free is reported, not executed.
    completed, log = run_under_valgrind(CANARY, [], tmp_path)
    assert completed.stdout.decode().strip().endswith("ok"), log[-3000:]
    found = ours(log)
    assert any("Invalid free" in r for r in found), log[-3000:]
