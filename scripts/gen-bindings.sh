#!/usr/bin/env bash
# Regenerates the uniffi bindings of libwxpay in library mode:
#
#   bindings/kotlin/com/wxpay/wxpay.kt                     (package com.wxpay)
#   bindings/swift/WxPay.swift, wxpayFFI.h, wxpayFFI.modulemap
#   bindings/python/wxpay.py
#
# It builds the debug cdylib and the in-crate uniffi-bindgen with
# `cargo build --all-features` (a no-op after `cargo build --all-features` or
# `cargo test --all-features`), then runs
# `uniffi-bindgen generate --no-format` on target/debug/libwxpay.so with the
# crate's uniffi.toml. --no-format keeps the output independent of whether
# ktlint or swiftformat happen to be installed.
#
# Usage:
#   scripts/gen-bindings.sh           write the bindings into bindings/
#   scripts/gen-bindings.sh --check   generate into a temporary directory and
#                                     fail (exit 1, with a diff) when the
#                                     checked-in bindings differ
# Env: WXPAY_SKIP_BUILD=1 skips the cargo build (the artifacts must exist);
#      CARGO_TARGET_DIR is honoured.
set -euo pipefail

mode=write
case "${1:-}" in
"") ;;
--check) mode=check ;;
-h | --help)
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
*)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$(uname -s)" in
Darwin) cdylib="$target_dir/debug/libwxpay.dylib" ;;
*) cdylib="$target_dir/debug/libwxpay.so" ;;
esac
bindgen="$target_dir/debug/uniffi-bindgen"
languages=(kotlin swift python)

if [ "${WXPAY_SKIP_BUILD:-0}" != 1 ]; then
    echo "gen-bindings: building the debug cdylib and uniffi-bindgen (cargo build --all-features)" >&2
    cargo build --quiet --all-features --lib --bin uniffi-bindgen
fi
for f in "$cdylib" "$bindgen"; do
    if [ ! -f "$f" ]; then
        echo "gen-bindings: $f is missing: run \`cargo build --all-features\` first" >&2
        exit 1
    fi
done

out="$(mktemp -d "${TMPDIR:-/tmp}/wxpay-bindings.XXXXXX")"
trap 'rm -rf "$out"' EXIT
for language in "${languages[@]}"; do
    "$bindgen" generate --no-format --language "$language" --out-dir "$out/$language" "$cdylib" >/dev/null
done

if [ "$mode" = check ]; then
    status=0
    for language in "${languages[@]}"; do
        if ! diff -ru "bindings/$language" "$out/$language"; then
            status=1
        fi
    done
    if [ "$status" -ne 0 ]; then
        echo "check-bindings: the checked-in bindings differ from what the library generates;" >&2
        echo "check-bindings: run scripts/gen-bindings.sh and commit bindings/{kotlin,swift,python}" >&2
        exit 1
    fi
    echo "check-bindings: bindings/{kotlin,swift,python} are up to date" >&2
    exit 0
fi

for language in "${languages[@]}"; do
    rm -rf "bindings/$language"
    mkdir -p bindings
    cp -R "$out/$language" "bindings/$language"
done
echo "gen-bindings: wrote bindings/{kotlin,swift,python}" >&2
find bindings/kotlin bindings/swift bindings/python -type f | sort >&2
