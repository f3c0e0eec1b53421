#!/usr/bin/env bash
# Interoperability with clients nobody here wrote, installed from PyPI into a
# virtualenv under target/: wechatpy 1.8.18 (API v2) and wechatpayv3 2.0.x (API v3).
# Needs target/debug/libwxpay.so and target/debug/wxpay (cargo test --all-features builds both;
# CARGO_TARGET_DIR honoured).
# With WXPAY_LOG set, pytest runs with -s: the library's log lines reach the output.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/interop-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
    'wechatpy[cryptography]==1.8.18' 'wechatpayv3>=2.0,<2.1' 'pytest>=7' >/dev/null

target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
export WXPAY_LIB="${WXPAY_LIB:-$target_dir/debug/libwxpay.so}"
export WXPAY_BIN="${WXPAY_BIN:-$target_dir/debug/wxpay}"
export PYTHONPATH="$PWD/bindings/python-ctypes${PYTHONPATH:+:$PYTHONPATH}"
"$venv/bin/python" -m pytest -q -p no:cacheprovider ${WXPAY_LOG:+-s} tests/interop
