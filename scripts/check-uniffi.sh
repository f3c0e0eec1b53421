#!/usr/bin/env bash
# Runs the host tests of the checked-in uniffi bindings against the debug
# build, with a sandbox gateway started here on a free loopback port:
#
#   python        tests/bindings/test_wxpay.py on bindings/python/wxpay.py (python3),
#                 then tests/bindings/test_malformed_uniffi.py on the
#                 malformed-call corpus tests/malformed/generate.py writes into
#                 the target directory: at least 10,000 malformed calls to every
#                 method and function; then
#                 tests/bindings/test_fork_uniffi.py: a client used before
#                 os.fork() works in the parent and in every child
#   kotlin        tests/bindings/TestWxPay.kt + bindings/kotlin/com/wxpay/wxpay.kt,
#                 compiled by one kotlinc run, on the JVM with JNA
#   swift-header  tests/bindings/swift_header_check.c: bindings/swift/wxpayFFI.h
#                 compiled by clang and linked against libwxpay.so; checks the
#                 contract version and API checksums WxPay.swift expects (no
#                 Swift compiler runs here)
#
# It runs `cargo build --all-features --lib --bin wxpay` (a no-op after
# `cargo build --all-features` or `cargo test --all-features`) and installs
# what is missing:
# Debian's libjna-java and clang (apt-get, as root), and kotlin-compiler from
# npm into .tools/ (git-ignored). The compiled Kotlin test is cached in
# target/uniffi-kotlin-test/, keyed by its sources and the compiler version.
#
# Usage: scripts/check-uniffi.sh [python|kotlin|swift-header ...]   (default: all)
# Env:   WXPAY_SKIP_BUILD=1 skips the cargo build (the artifacts must exist);
#        CARGO_TARGET_DIR and KOTLIN_COMPILER_VERSION are honoured;
#        WXPAY_OUTPUT_DIR=DIR keeps the sandbox's output in DIR/uniffi/ (the
#        suites write to this script's own stdout and stderr).
# Ends with "check-uniffi: N passed, M failed" (one count per suite); exits 1
# when a suite fails.
set -euo pipefail

KOTLIN_COMPILER_VERSION="${KOTLIN_COMPILER_VERSION:-2.4.20}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
debug_dir="$target_dir/debug"
cdylib="$debug_dir/libwxpay.so"
tools="$root/.tools"
kotlinc="$tools/node_modules/kotlin-compiler/bin/kotlinc"
jna_jar=/usr/share/java/jna.jar

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(python kotlin swift-header)
wants() {
    local s
    for s in "${suites[@]}"; do [ "$s" = "$1" ] && return 0; done
    return 1
}
log() { echo "check-uniffi: $*" >&2; }

# --- build ----------------------------------------------------------------
if [ "${WXPAY_SKIP_BUILD:-0}" != 1 ]; then
    log "building the debug library and the wxpay CLI (cargo build --all-features)"
    cargo build --quiet --all-features --lib --bin wxpay
fi
for f in "$cdylib" "$debug_dir/wxpay"; do
    if [ ! -f "$f" ]; then
        log "$f is missing: run \`cargo build --all-features\` first"
        exit 1
    fi
done

# --- tools ----------------------------------------------------------------
apt_packages=()
if wants kotlin; then
    command -v java >/dev/null || apt_packages+=(openjdk-17-jre-headless)
    [ -f "$jna_jar" ] || apt_packages+=(libjna-java)
    if [ ! -x "$kotlinc" ]; then command -v npm >/dev/null || apt_packages+=(npm); fi
fi
if wants swift-header; then command -v clang >/dev/null || apt_packages+=(clang); fi
if wants python; then command -v python3 >/dev/null || apt_packages+=(python3); fi
if [ ${#apt_packages[@]} -gt 0 ]; then
    log "installing ${apt_packages[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi
if wants kotlin && [ ! -x "$kotlinc" ]; then
    log "installing kotlin-compiler@$KOTLIN_COMPILER_VERSION (npm) into .tools/"
    mkdir -p "$tools"
    npm install --silent --no-audit --no-fund --no-save --prefix "$tools" \
        "kotlin-compiler@$KOTLIN_COMPILER_VERSION" >/dev/null
fi

# --- sandbox --------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/wxpay-uniffi.XXXXXX")"
sandbox_pid=
cleanup() {
    if [ -n "$sandbox_pid" ]; then
        kill "$sandbox_pid" 2>/dev/null || true
        wait "$sandbox_pid" 2>/dev/null || true
    fi
    if [ -n "${WXPAY_OUTPUT_DIR:-}" ]; then
        mkdir -p "$WXPAY_OUTPUT_DIR/uniffi" &&
            cp "$work"/sandbox.* "$WXPAY_OUTPUT_DIR/uniffi/" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

"$debug_dir/wxpay" sandbox --port 0 >"$work/sandbox.out" 2>"$work/sandbox.err" &
sandbox_pid=$!
base=
for _ in $(seq 1 100); do
    base="$(head -n 1 "$work/sandbox.out" 2>/dev/null || true)"
    case "$base" in http://*) break ;; esac
    base=
    if ! kill -0 "$sandbox_pid" 2>/dev/null; then break; fi
    sleep 0.1
done
if [ -z "$base" ]; then
    log "the sandbox did not print its base URL; its stderr:"
    cat "$work/sandbox.err" >&2
    exit 1
fi
log "sandbox at $base"

# --- suites ---------------------------------------------------------------
passed=0
failed=0
run_suite() {
    local name="$1"
    shift
    log "--- $name"
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        log "$name FAILED"
    fi
}

python_suite() {
    local corpus="$target_dir/malformed/uniffi.corpus"
    WXPAY_LIB="$cdylib" python3 "$root/tests/bindings/test_wxpay.py" "$base" &&
        WXPAY_LIB="$cdylib" python3 "$root/tests/malformed/generate.py" "$base" "$corpus" &&
        WXPAY_LIB="$cdylib" python3 "$root/tests/bindings/test_malformed_uniffi.py" "$corpus" &&
        WXPAY_LIB="$cdylib" python3 "$root/tests/bindings/test_fork_uniffi.py" "$base"
}

kotlin_suite() {
    local sources=("$root/bindings/kotlin/com/wxpay/wxpay.kt" "$root/tests/bindings/TestWxPay.kt")
    local version key jar
    version="$("$kotlinc" -version 2>&1 | tail -n 1)"
    key="$( (cat "${sources[@]}" && echo "$version") | sha256sum | cut -c 1-16)"
    jar="$target_dir/uniffi-kotlin-test/test-$key.jar"
    if [ ! -f "$jar" ]; then
        log "compiling the Kotlin binding and test ($version; 15 to 60 s)"
        mkdir -p "$(dirname "$jar")"
        rm -f "$(dirname "$jar")"/test-*.jar
        "$kotlinc" -nowarn -include-runtime -cp "$jna_jar" -d "$work/test.jar" "${sources[@]}" || return 1
        mv "$work/test.jar" "$jar" || return 1
    fi
    java -Djna.library.path="$debug_dir" -cp "$jar:$jna_jar" TestWxPayKt "$base"
}

swift_header_suite() {
    local swift="$root/bindings/swift/WxPay.swift" header="$root/bindings/swift/wxpayFFI.h"
    local version
    version="$(sed -n 's/^ *let bindings_contract_version = \([0-9][0-9]*\)$/\1/p' "$swift")"
    if [ -z "$version" ]; then
        log "no bindings_contract_version in $swift"
        return 1
    fi
    mkdir -p "$work/inc"
    sed -n 's/^ *if (\(uniffi_wxpay_checksum_[A-Za-z0-9_]*\)() != \([0-9][0-9]*\)) {$/CHECKSUM(\1, \2)/p' \
        "$swift" >"$work/inc/swift_checksums.inc"
    grep -oE '\b(uniffi|ffi)_wxpay_[A-Za-z0-9_]+\(' "$header" | tr -d '(' | sort -u |
        sed 's/.*/SYMBOL(&)/' >"$work/inc/header_symbols.inc" || return 1
    # Every checksum function the header declares must be checked.
    local checksums declared
    checksums="$(wc -l <"$work/inc/swift_checksums.inc")"
    declared="$(grep -c '^SYMBOL(uniffi_wxpay_checksum_' "$work/inc/header_symbols.inc")"
    log "contract version $version, $checksums checksums," \
        "$(wc -l <"$work/inc/header_symbols.inc") functions in wxpayFFI.h"
    if [ "$checksums" -eq 0 ] || [ "$checksums" -ne "$declared" ]; then
        log "WxPay.swift checks $checksums checksums; wxpayFFI.h declares $declared"
        return 1
    fi
    clang -std=c11 -Wall -Wextra -Werror -I "$root/bindings/swift" -I "$work/inc" \
        -DEXPECTED_CONTRACT_VERSION="$version" "$root/tests/bindings/swift_header_check.c" \
        -L "$debug_dir" -l:libwxpay.so -Wl,-rpath,"$debug_dir" -o "$work/swift_header_check" || return 1
    "$work/swift_header_check"
}

wants python && run_suite python python_suite
wants kotlin && run_suite kotlin kotlin_suite
wants swift-header && run_suite swift-header swift_header_suite

echo "check-uniffi: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
