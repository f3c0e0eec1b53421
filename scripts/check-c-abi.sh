#!/usr/bin/env bash
# Checks libwxpay's C ABI from the outside, with the debug build that
# `cargo test --all-features` left in target/debug (no release build):
#
#   1. the C programs of tests/c/ (pay.c, abuse.c, lifecycle.c, v3.c) under
#      valgrind (memcheck: 0 errors, 0 bytes definitely lost), linked against the
#      shared and the static library; lifecycle.c runs an API v2 order from
#      payment to refund, answering the sandbox's notifications on a loopback
#      port of its own; v3.c does the same for API v3 (public-key mode),
#      verifying the signed notification with its Wechatpay-* headers;
#   2. the same programs built with -fsanitize=address,undefined (LeakSanitizer
#      on), linked against the static library; and tests/c/malformed.c, which
#      runs the malformed-call corpus (at least 10,000 malformed calls to every
#      exported function, each refused, none reaching the sandbox) that
#      tests/malformed/generate.py writes into the target directory before each
#      run, natively against the shared library and with ASAN+UBSAN against the
#      static one (not under valgrind: too slow);
#   3. include/wxpay.h compiled as C++ (cpp_compat), and the install recipe
#      of README.md (header, library, wxpay.pc from wxpay.pc.in) followed by a
#      build of tests/c/pay.c with `pkg-config --cflags --libs wxpay`;
#   4. the pytest suite of the ctypes package (bindings/python-ctypes), one
#      test of which runs ctypes calls under valgrind with PYTHONMALLOC=malloc.
#
# It installs what it needs and lacks: valgrind, gcc and pkg-config (apt-get),
# pytest (pip). A sandbox gateway (`target/debug/wxpay sandbox --port 0`) is started
# for the C programs and stopped on exit; the pytest fixtures start their own.
#
# Usage: scripts/check-c-abi.sh        (from anywhere; CARGO_TARGET_DIR honoured)
# Env:   WXPAY_SKIP_BUILD=1  do not run `cargo build --all-features --lib --bin wxpay`
#                            first (it is a no-op right after `cargo test --all-features`)
#        WXPAY_OUTPUT_DIR=DIR  keep every step's log and the sandbox's output in
#                            DIR/c-abi/ (otherwise they are deleted at exit)
#        WXPAY_LOG=LEVEL     the library's log level (src/util/logging.rs); pytest then
#                            runs with -s, so the log lines reach the step's log
# The last line reads "check-c-abi: N passed, N failed"; exit status 0 when none failed.

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
PROFILE_DIR="$TARGET_DIR/debug"
SHARED_LIB="$PROFILE_DIR/libwxpay.so"
STATIC_LIB="$PROFILE_DIR/libwxpay.a"
WXPAY_BIN="$PROFILE_DIR/wxpay"
# What Rust's std needs from the system when linking the static library
# (`cargo rustc --lib -- --print native-static-libs`).
STATIC_LINK_LIBS=(-lpthread -ldl -lm -lrt -lutil -lgcc_s)
CFLAGS=(-Wall -Wextra -Werror -g -pthread -I"$ROOT/include")

passed=0
failed=0
log() { printf 'check-c-abi: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- tools
apt_updated=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "$* missing and apt-get unavailable: install it"
    if [ "$apt_updated" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
        || die "apt-get install $* failed"
}
command -v gcc >/dev/null 2>&1 || { log "installing gcc"; apt_install gcc libc6-dev; }
command -v g++ >/dev/null 2>&1 || { log "installing g++"; apt_install g++; }
command -v valgrind >/dev/null 2>&1 || { log "installing valgrind"; apt_install valgrind; }
command -v pkg-config >/dev/null 2>&1 || { log "installing pkg-config"; apt_install pkg-config; }
command -v python3 >/dev/null 2>&1 || { log "installing python3"; apt_install python3 python3-pip; }
PYTHON="$(command -v python3)"
if ! "$PYTHON" -c 'import pytest' >/dev/null 2>&1; then
    log "installing pytest"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check pytest \
        || die "pip install pytest failed"
fi

# ---------------------------------------------------------------- build
if [ "${WXPAY_SKIP_BUILD:-0}" != 1 ]; then
    log "cargo build --all-features --lib --bin wxpay (debug)"
    cargo build --quiet --all-features --lib --bin wxpay || die "cargo build failed"
fi
for f in "$SHARED_LIB" "$STATIC_LIB" "$WXPAY_BIN"; do
    [ -f "$f" ] || die "$f is missing: run \`cargo build --all-features\` first"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/wxpay-c-abi.XXXXXX")"
SANDBOX_PID=""
cleanup() {
    if [ -n "$SANDBOX_PID" ]; then
        kill "$SANDBOX_PID" 2>/dev/null
        wait "$SANDBOX_PID" 2>/dev/null
    fi
    if [ -n "${WXPAY_OUTPUT_DIR:-}" ]; then
        mkdir -p "$WXPAY_OUTPUT_DIR/c-abi" &&
            cp "$WORK"/*.log "$WORK"/sandbox.* "$WXPAY_OUTPUT_DIR/c-abi/" 2>/dev/null
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- steps
# step NAME COMMAND...: runs one check, output to a log shown on failure.
step() {
    local name="$1"
    shift
    local out="$WORK/step-$((passed + failed)).log"
    printf '==> %s\n' "$name" >"$out"
    if "$@" >>"$out" 2>&1; then
        passed=$((passed + 1))
        log "ok   $name"
    else
        failed=$((failed + 1))
        log "FAIL $name"
        tail -n 80 "$out" >&2
    fi
}

compile() { # compile OUT SOURCE EXTRA...
    local out="$1" src="$2"
    shift 2
    gcc "${CFLAGS[@]}" -o "$WORK/$out" "$ROOT/tests/c/$src" "$@"
}

# valgrind_clean LOG COMMAND...: memcheck with definite leaks counted as
# errors. "Possibly lost" is not counted: Rust's std keeps the calling
# thread's `thread::current()` handle (48 bytes) for the thread's life, which
# memcheck reports as possibly lost; it is not a leak of libwxpay.
valgrind_clean() {
    local vlog="$1"
    shift
    valgrind --leak-check=full --error-exitcode=1 --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite --num-callers=40 --log-file="$vlog" "$@" || {
        cat "$vlog"
        return 1
    }
    grep -q 'ERROR SUMMARY: 0 errors' "$vlog" || { cat "$vlog"; return 1; }
    if grep -q 'definitely lost: [1-9]' "$vlog"; then cat "$vlog"; return 1; fi
}

# Arms the fault abuse.c expects: the next genprepay answers errcode 45009.
arm_quota_fault() {
    "$PYTHON" - "$BASE" <<'EOF'
import json, sys, urllib.request
rule = {"endpoint": "genprepay",
        "action": {"errcode": {"errcode": 45009, "errmsg": "quota"}}, "count": 1}
request = urllib.request.Request(sys.argv[1] + "/sandbox/faults",
                                 data=json.dumps(rule).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
urllib.request.urlopen(request, timeout=10).read()
EOF
}

expect_output() { # expect_output PATTERN COMMAND...: runs, shows output, greps PATTERN
    local pattern="$1"
    shift
    local out
    out="$("$@")" || { printf '%s\n' "$out"; return 1; }
    printf '%s\n' "$out"
    grep -q -- "$pattern" <<<"$out"
}

# Each program must report exactly its number of checks: a program that
# stopped early, or ran none, does not pass. Change a count with its program.
run_pay() { expect_output '^pay: 6 orders, 0 failed$' "$@" "$BASE" 3 2; }
run_abuse() { arm_quota_fault && expect_output '^abuse: 263 passed, 0 failed$' "$@" "$BASE"; }
run_lifecycle() { expect_output '^lifecycle: 30 passed, 0 failed$' "$@" "$BASE"; }
run_v3() { expect_output '^v3: 36 passed, 0 failed$' "$@" "$BASE"; }
# A fresh corpus each run: its API v3 notification must be recent.
MALFORMED_CORPUS="$TARGET_DIR/malformed/c-abi.corpus"
run_malformed() {
    WXPAY_LIB="$SHARED_LIB" "$PYTHON" "$ROOT/tests/malformed/generate.py" "$BASE" "$MALFORMED_CORPUS" &&
        expect_output 'malformed: [0-9]* passed, 0 failed' "$@" "$MALFORMED_CORPUS"
}

# ---------------------------------------------------------------- sandbox
"$WXPAY_BIN" sandbox --port 0 >"$WORK/sandbox.out" 2>"$WORK/sandbox.err" &
SANDBOX_PID=$!
BASE=""
for _ in $(seq 1 300); do
    BASE="$(head -n 1 "$WORK/sandbox.out" 2>/dev/null)"
    case "$BASE" in http://*) break ;; esac
    kill -0 "$SANDBOX_PID" 2>/dev/null || { cat "$WORK/sandbox.err" >&2; die "wxpay sandbox exited"; }
    BASE=""
    sleep 0.1
done
[ -n "$BASE" ] || die "wxpay sandbox printed no base URL within 30 s"
log "sandbox at $BASE"

# ---------------------------------------------------------------- C programs
SHARED_LINK=(-L"$PROFILE_DIR" -lwxpay -Wl,-rpath,"$PROFILE_DIR")
STATIC_LINK=("$STATIC_LIB" "${STATIC_LINK_LIBS[@]}")
SANITIZE=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)

compile_pair() { # compile_pair SUFFIX LINK-ARGS...
    local suffix="$1"
    shift
    compile "pay-$suffix" pay.c "$@" && compile "abuse-$suffix" abuse.c "$@" &&
        compile "lifecycle-$suffix" lifecycle.c "$@" && compile "v3-$suffix" v3.c "$@"
}
step "compile pay.c, abuse.c, lifecycle.c, v3.c (shared)" compile_pair shared "${SHARED_LINK[@]}"
step "compile pay.c, abuse.c, lifecycle.c, v3.c (static)" compile_pair static "${STATIC_LINK[@]}"
step "compile pay.c, abuse.c, lifecycle.c, v3.c (static, ASAN+UBSAN)" \
    compile_pair asan "${SANITIZE[@]}" "${STATIC_LINK[@]}"
step "compile malformed.c (shared)" compile malformed-shared malformed.c "${SHARED_LINK[@]}"
step "compile malformed.c (static, ASAN+UBSAN)" \
    compile malformed-asan malformed.c "${SANITIZE[@]}" "${STATIC_LINK[@]}"
step "malformed: 10^4 malformed calls per function (shared)" run_malformed "$WORK/malformed-shared"

for link in shared static; do
    step "valgrind pay ($link)" run_pay valgrind_clean "$WORK/vg-pay-$link.log" "$WORK/pay-$link"
    step "valgrind abuse ($link)" \
        run_abuse valgrind_clean "$WORK/vg-abuse-$link.log" "$WORK/abuse-$link"
    step "valgrind lifecycle ($link)" \
        run_lifecycle valgrind_clean "$WORK/vg-lifecycle-$link.log" "$WORK/lifecycle-$link"
    step "valgrind v3 ($link)" run_v3 valgrind_clean "$WORK/vg-v3-$link.log" "$WORK/v3-$link"
done

export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# A million calls through the C ABI must not grow the process by 1 MiB.
step "compile memory.c (shared)" compile memory-shared memory.c "${SHARED_LINK[@]}"
step "memory: 10^6 calls, RSS growth under 1 MiB" "$WORK/memory-shared"

step "ASAN+UBSAN pay" run_pay "$WORK/pay-asan"
step "ASAN+UBSAN abuse" run_abuse "$WORK/abuse-asan"
step "ASAN+UBSAN lifecycle" run_lifecycle "$WORK/lifecycle-asan"
step "ASAN+UBSAN v3" run_v3 "$WORK/v3-asan"
step "ASAN+UBSAN malformed" run_malformed "$WORK/malformed-asan"
# fork.c: a client created and used before fork() works in the parent and in
# every child (valgrind follows the children; each must be clean too).
run_fork() { expect_output 'fork: [0-9]* passed, 0 failed' "$@" "$BASE"; }
step "compile fork.c (shared)" compile fork-shared fork.c "${SHARED_LINK[@]}"
step "compile fork.c (static, ASAN+UBSAN)" \
    compile fork-asan fork.c "${SANITIZE[@]}" "${STATIC_LINK[@]}"
step "valgrind fork (shared)" run_fork valgrind_clean "$WORK/vg-fork.log" "$WORK/fork-shared"
step "ASAN+UBSAN fork" run_fork "$WORK/fork-asan"
unset ASAN_OPTIONS UBSAN_OPTIONS

header_as_cxx() {
    printf '#include "wxpay.h"\nint main() { return WXPAY_OK; }\n' |
        g++ -x c++ -Wall -Wextra -Werror -I"$ROOT/include" -fsyntax-only -
}
step "include/wxpay.h compiles as C++" header_as_cxx

# The install recipe of README.md, into a scratch prefix, then pay.c built
# with nothing but what pkg-config says.
install_with_pkg_config() {
    local prefix="$WORK/prefix" version flags
    version="$(cargo pkgid | sed 's/.*[#@]//')"
    install -Dm644 "$ROOT/include/wxpay.h" "$prefix/include/wxpay.h" &&
        install -Dm755 "$SHARED_LIB" "$prefix/lib/libwxpay.so" &&
        mkdir -p "$prefix/lib/pkgconfig" &&
        sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" "$ROOT/wxpay.pc.in" \
            >"$prefix/lib/pkgconfig/wxpay.pc" || return 1
    [ "$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --modversion wxpay)" = "$version" ] ||
        return 1
    flags="$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs wxpay)" || return 1
    echo "pkg-config --cflags --libs wxpay: $flags"
    # shellcheck disable=SC2086 # word splitting of the flags is intended
    gcc -Wall -Wextra -Werror -pthread -o "$WORK/pay-pc" "$ROOT/tests/c/pay.c" $flags \
        -Wl,-rpath,"$prefix/lib" &&
        expect_output 'pay: 1 orders, 0 failed' "$WORK/pay-pc" "$BASE" 1 1
}
step "install recipe + pkg-config (wxpay.pc.in)" install_with_pkg_config

# ---------------------------------------------------------------- Python
step "pytest bindings/python-ctypes" \
    env WXPAY_LIB="$SHARED_LIB" WXPAY_BIN="$WXPAY_BIN" PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH="$ROOT/bindings/python-ctypes${PYTHONPATH:+:$PYTHONPATH}" \
    "$PYTHON" -m pytest -p no:cacheprovider -q ${WXPAY_LOG:+-s} "$ROOT/bindings/python-ctypes/tests"
# pytest's own summary line, for the log (shown in full above on failure).
grep -E '[0-9]+ passed' "$WORK/step-$((passed + failed - 1)).log" | tail -n 1 >&2

echo "check-c-abi: $passed passed, $failed failed"
[ "$failed" = 0 ]
