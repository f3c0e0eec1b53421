#!/usr/bin/env bash
# Reproduces every figure of BENCHMARKS.md in one run and rewrites that file.
#
#   bash scripts/bench.sh
#
# Builds the release binaries (and a size-optimised libwxpay.so), starts one
# `wxpay sandbox --port 0`, and against that one sandbox runs the same orders
# through the article's Python code (benches/article/get_prepaid_result.py, as
# written and with its time format fixed), through Python ctypes
# (wxpay_ctypes), through Rust (`wxpay load`, 1 and 8 threads), and the floor
# (examples/raw_roundtrip.rs: one keep-alive POST per order). Then signing per
# order, C ABI and ctypes call overhead, and the stripped library size.
# The order runs go round REPEAT times (all implementations in turn), and
# scripts/bench_report.py writes the medians to BENCHMARKS.md. Numbers, never
# assertions. About 3-10 minutes, mostly the cargo builds (cold: ~4 minutes
# each on 2 cores; the runs themselves take about a minute).
#
# Knobs (environment): ORDERS (300), ORDERS_MT (1000, the 8-thread run),
# REPEAT (3 rounds), FLOOR_ORDERS (2000), SIGN_ITERS (20000),
# BENCH_OUT (BENCHMARKS.md),
# BENCH_CRITERION=1 to also run `cargo bench --bench signing` (short
# measurement; adds a criterion build), BENCH_SKIP_SIZE=1 to skip the
# size-profile build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

ORDERS=${ORDERS:-300}
ORDERS_MT=${ORDERS_MT:-1000}
REPEAT=${REPEAT:-3}
FLOOR_ORDERS=${FLOOR_ORDERS:-2000}
SIGN_ITERS=${SIGN_ITERS:-20000}
BENCH_OUT=${BENCH_OUT:-BENCHMARKS.md}
BENCH_CRITERION=${BENCH_CRITERION:-0}
BENCH_SKIP_SIZE=${BENCH_SKIP_SIZE:-0}

work=target/bench
rm -rf "$work/results"
mkdir -p "$work/results"
results=$work/results
started=$(date +%s)
loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)

step() { printf '\n==> %s\n' "$*" >&2; }

# `record NAME EXTRA_CONNECTIONS CMD...`: runs CMD (its stdout: JSON lines),
# keeps its output and command, and the sandbox's token fetches and new TCP
# connections during it (less the after-query's own connection and the
# harness's EXTRA_CONNECTIONS control requests).
record() {
    local name=$1 extra=$2
    shift 2
    printf '%s\n' "$*" | sed "s|$base|\$BASE|g; s|$root/||g" >"$results/$name.cmd"
    local before after
    before=$(curl -fsS "$base/sandbox/stats")
    step "$name: $*"
    "$@" >"$results/$name.jsonl" || echo "(exit status $?)" >&2
    after=$(curl -fsS "$base/sandbox/stats")
    printf '{"before": %s, "after": %s, "extra": %s}\n' "$before" "$after" "$extra" >"$results/$name.stats"
    cat "$results/$name.jsonl" >&2
}

# ---------------------------------------------------------------- builds
step "cargo build --release --features cli --lib --bin wxpay --examples"
t0=$(date +%s)
cargo build --release --features cli --lib --bin wxpay --examples
echo "$(($(date +%s) - t0))" >"$work/build-release.secs"

# The size-optimised library an app embeds (default features). Two builds:
# `cargo build --lib` as asked, and the cdylib alone through `cargo rustc`,
# because with this crate's crate-type list (lib + cdylib + staticlib) Cargo
# does not pass `-C lto` at all (check with `cargo build -v`): LTO only
# happens when the cdylib is built on its own.
size_config=(--profile size
    --config 'profile.size.inherits="release"' --config 'profile.size.opt-level="z"'
    --config 'profile.size.lto=true' --config 'profile.size.codegen-units=1'
    --config 'profile.size.panic="unwind"')
if [ "$BENCH_SKIP_SIZE" != 1 ]; then
    step "cargo build --lib ${size_config[*]}"
    t0=$(date +%s)
    cargo build --lib "${size_config[@]}"
    strip -o "$work/libwxpay-size-build.stripped.so" target/size/libwxpay.so
    cp target/size/libwxpay.so "$work/libwxpay-size-build.so"
    step "cargo rustc --lib --crate-type cdylib ${size_config[*]}"
    cargo rustc --lib --crate-type cdylib "${size_config[@]}"
    echo "$(($(date +%s) - t0))" >"$work/build-size.secs"
    strip -o "$work/libwxpay-size.stripped.so" target/size/libwxpay.so
    strip -o "$work/libwxpay-release.stripped.so" target/release/libwxpay.so
    quoted=
    for a in "${size_config[@]}"; do
        case $a in --* | size) quoted+="$a " ;; *) quoted+="'$a' " ;; esac
    done
    python3 - "$results/size.json" "${quoted% }" \
        "$(stat -c %s target/size/libwxpay.so)" "$(stat -c %s "$work/libwxpay-size.stripped.so")" \
        "$(stat -c %s "$work/libwxpay-size-build.so")" "$(stat -c %s "$work/libwxpay-size-build.stripped.so")" \
        "$(stat -c %s target/release/libwxpay.so)" "$(stat -c %s "$work/libwxpay-release.stripped.so")" \
        "$(nm -D --defined-only "$work/libwxpay-size.stripped.so" | grep -c ' T wxpay_')" <<'PY'
import json, sys
path, config = sys.argv[1], sys.argv[2]
n = [int(v) for v in sys.argv[3:]]
json.dump({
    "cdylib_unstripped": n[0], "cdylib_stripped": n[1],
    "build_unstripped": n[2], "build_stripped": n[3],
    "release_cli_unstripped": n[4], "release_cli_stripped": n[5], "exports": n[6],
    "cdylib_command": "cargo rustc --lib --crate-type cdylib " + config,
    "build_command": "cargo build --lib " + config,
}, open(path, "w"))
PY
fi

step "C: benches/c/sign_loop.c against target/release/libwxpay.so"
cc -O2 -Wall -Wextra -Iinclude benches/c/sign_loop.c -Ltarget/release -lwxpay \
    -Wl,-rpath,"$root/target/release" -o "$work/sign_loop"

step "Python: a virtualenv with requests (the article's only dependency)"
venv=$work/venv
if ! "$venv/bin/python" -c 'import requests' 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'requests==2.34.2'
fi
py=$venv/bin/python
export WXPAY_LIB=$root/target/release/libwxpay.so
export PYTHONPATH=$root/bindings/python-ctypes

# ---------------------------------------------------------------- the sandbox
step "target/release/wxpay sandbox --port 0"
target/release/wxpay sandbox --port 0 >"$work/sandbox.out" 2>&1 &
sandbox_pid=$!
trap 'kill "$sandbox_pid" 2>/dev/null || true' EXIT
base=
for _ in $(seq 100); do
    base=$(head -n1 "$work/sandbox.out" 2>/dev/null || true)
    case $base in http://*) break ;; esac
    sleep 0.1
done
case $base in http://*) ;; *) echo "the sandbox did not start" >&2; exit 1 ;; esac
echo "sandbox at $base" >&2
# The article's merchant, GBK as its package: the same for every libwxpay run.
curl -fsS "$base/sandbox/config" |
    python3 -c 'import json,sys; c=json.load(sys.stdin); c["input_charset"]="GBK"; print(json.dumps(c))' \
        >"$work/config-gbk.json"

# ---------------------------------------------------------------- orders
# REPEAT rounds, every implementation in turn in each round; the report takes medians.
for r in $(seq "$REPEAT"); do
    # (1) the article's code, as written (refused: time_start in Unix seconds), then with the time fixed
    record "article_as_written.$r" 3 "$py" benches/article/get_prepaid_result.py --api-base "$base" --orders "$ORDERS"
    record "article_fixed.$r" 4 "$py" benches/article/get_prepaid_result.py --api-base "$base" --orders "$ORDERS" --fix-time-format
    # (2) the same orders through wxpay_ctypes
    record "ctypes_legacy.$r" 1 "$py" benches/article/through_ctypes.py --api-base "$base" --legacy "$ORDERS"
    record "ctypes_client.$r" 1 "$py" benches/article/through_ctypes.py --api-base "$base" --client "$ORDERS"
    # (3) Rust directly: 1 thread for latency, 8 threads sharing one client for throughput
    record "rust_1.$r" 0 target/release/wxpay load --config "$work/config-gbk.json" --orders "$ORDERS" --threads 1 --amount 19.99
    record "rust_8.$r" 0 target/release/wxpay load --config "$work/config-gbk.json" --orders "$ORDERS_MT" --threads 8 --amount 19.99
    # (4) the floor: one keep-alive POST round trip per order
    record "floor.$r" 0 target/release/examples/raw_roundtrip --api-base "$base" --orders "$FLOOR_ORDERS"
done
curl -fsS "$base/sandbox/stats" >"$results/sandbox-final.stats"
kill "$sandbox_pid" 2>/dev/null || true
trap - EXIT

# ---------------------------------------------------------------- signing and call overhead
sign_record() {
    local name=$1
    shift
    printf '%s\n' "$*" | sed "s|$root/||g" >"$results/$name.cmd"
    step "$name: $*"
    "$@" >"$results/$name.jsonl"
    cat "$results/$name.jsonl" >&2
}
sign_record sign_rust target/release/examples/sign_timing
sign_record sign_article "$py" benches/article/get_prepaid_result.py --sign-only "$SIGN_ITERS"
sign_record sign_c "$work/sign_loop" "$SIGN_ITERS"
sign_record sign_ctypes "$py" benches/article/through_ctypes.py --sign "$SIGN_ITERS"
if [ "$BENCH_CRITERION" = 1 ]; then
    step "cargo bench --bench signing (short measurement)"
    cargo bench --bench signing -- --warm-up-time 1 --measurement-time 3 2>&1 | tee "$work/criterion.txt" >&2
    python3 - "$work/criterion.txt" >"$results/criterion.jsonl" <<'PY'
import json, re, sys
units = {"ns": 1, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}
skip = ("Benchmarking", "Found", "Warning", "Running", "Compiling", "Finished", "Gnuplot", "WARNING")
name = None
for line in open(sys.argv[1], encoding="utf-8"):
    if line.strip() and not line[0].isspace() and not line.startswith(skip):
        name = line.split(" time:")[0].strip()
    m = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
    if m and name:
        print(json.dumps({"impl": "criterion: " + name, "ns_per_op": round(float(m.group(1)) * units[m.group(2)])}))
PY
    echo 'cargo bench --bench signing -- --warm-up-time 1 --measurement-time 3' >"$results/criterion.cmd"
fi

# ---------------------------------------------------------------- the report
python3 scripts/bench_report.py "$results" "$BENCH_OUT" "$(($(date +%s) - started))" \
    "$loadavg_start" "$(cut -d' ' -f1-3 /proc/loadavg)"
