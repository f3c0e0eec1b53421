#!/usr/bin/env bash
# Fuzzes every cargo-fuzz target under fuzz/ for a while (RELIABILITY.md,
# "Fuzzing").
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [--asan]
#
# SECONDS_PER_TARGET defaults to 30. Without --asan the targets are built on
# the stable toolchain with `--sanitizer none`; with --asan they are built
# with AddressSanitizer (and LeakSanitizer), which needs RUSTC_BOOTSTRAP=1
# on stable, in a target directory of their own (fuzz/target/asan).
#
# Installs cargo-fuzz when it is missing, builds every target once, then
# runs each one in turn: the seeds in fuzz/corpus/<target>/ are read, never
# written; what libFuzzer finds goes to fuzz/target/fuzz-corpus/<target>/
# (kept between runs, so longer runs build on shorter ones) and a crashing
# input to fuzz/artifacts/<target>/. Prints one line per target and a total;
# exits non-zero when any target crashed, timed out, leaked or ran out of
# memory.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2

seconds=30
asan=0
for arg in "$@"; do
    case "$arg" in
        --asan) asan=1 ;;
        '' | *[!0-9]*)
            echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [--asan]" >&2
            exit 2
            ;;
        *) seconds=$arg ;;
    esac
done
if [ "$seconds" -lt 1 ]; then
    echo "fuzz: SECONDS_PER_TARGET must be at least 1" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

triple=$(rustc -vV | sed -n 's/^host: //p')
if [ "$asan" = 1 ]; then
    # -Zsanitizer=address is unstable; RUSTC_BOOTSTRAP lets stable rustc take it.
    export RUSTC_BOOTSTRAP=1
    build=(cargo fuzz build --sanitizer address --target-dir fuzz/target/asan)
    bin_dir="fuzz/target/asan/$triple/release"
    mode="ASan"
else
    build=(cargo fuzz build --sanitizer none)
    bin_dir="fuzz/target/$triple/release"
    mode="no sanitizer"
fi

mapfile -t targets < <(cargo fuzz list)
if [ "${#targets[@]}" -eq 0 ]; then
    echo "fuzz: no targets under fuzz/fuzz_targets" >&2
    exit 1
fi

echo "fuzz: building ${#targets[@]} targets ($mode)" >&2
build_start=$SECONDS
"${build[@]}"
echo "fuzz: built in $((SECONDS - build_start)) s" >&2

logs=fuzz/target/fuzz-logs
mkdir -p "$logs"
passed=0
failed=0
for target in "${targets[@]}"; do
    work="fuzz/target/fuzz-corpus/$target"
    artifacts="fuzz/artifacts/$target/"
    log="$logs/$target.log"
    mkdir -p "$work" "$artifacts"
    # A missing seed directory is fine: libFuzzer starts from nothing.
    seeds=()
    if [ -d "fuzz/corpus/$target" ]; then
        seeds=("fuzz/corpus/$target")
    fi
    rc=0
    start=$SECONDS
    "$bin_dir/$target" \
        -max_total_time="$seconds" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 \
        -artifact_prefix="$artifacts" \
        "$work" "${seeds[@]}" >"$log" 2>&1 || rc=$?

    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 || true)
    if [ -z "$execs" ] && [ -n "$done_line" ]; then
        execs=$(awk '{print $2}' <<<"$done_line")
    fi
    if [ -n "$done_line" ]; then
        time_s=$(awk '{print $5}' <<<"$done_line")
    else
        time_s=$((SECONDS - start)) # stopped early: the wall time
    fi
    crashes=$(grep -c 'Test unit written to' "$log" || true)

    if [ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ]; then
        passed=$((passed + 1))
        verdict=ok
    else
        failed=$((failed + 1))
        verdict="FAILED (exit $rc)"
    fi
    printf 'fuzz: %-16s execs=%-10s time=%ss crashes=%s %s\n' \
        "$target" "${execs:-?}" "${time_s:-?}" "$crashes" "$verdict"
    if [ "$verdict" != ok ]; then
        # The panic or sanitizer report, and where the input was written.
        grep -E -A12 "panicked at|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)" "$log" \
            | head -n 40 | sed 's/^/    /' || true
        grep 'Test unit written to' "$log" | sed 's/^/    /' || true
        echo "    full log: $log"
    fi
done

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
