#!/usr/bin/env python3
"""Writes BENCHMARKS.md from the results scripts/bench.sh left in target/bench/results.

    python3 scripts/bench_report.py RESULTS_DIR OUT.md ELAPSED_SECS "LOADAVG START" "LOADAVG END"

Each order run NAME.R (R = round 1..REPEAT) left NAME.R.jsonl (JSON lines, one
per implementation), NAME.R.stats (the sandbox's counters before and after) and
NAME.R.cmd; the one-shot measurements left NAME.jsonl and NAME.cmd. Per
implementation the report shows the median over the rounds of orders/s, p50
and p99 (each taken on its own), with the range of orders/s.
"""

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

results, out_path, elapsed, load_start, load_end = sys.argv[1:6]


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


def cmd(name):
    for candidate in (name, name + ".1"):
        path = os.path.join(results, candidate + ".cmd")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                return f.read().strip()
    return ""


def rounds(name):
    """[(json lines, (token fetches, new TCP connections))] for every round of NAME."""
    out = []
    r = 1
    while os.path.exists(os.path.join(results, "%s.%d.jsonl" % (name, r))):
        base = os.path.join(results, "%s.%d" % (name, r))
        counters = (None, None)
        if os.path.exists(base + ".stats"):
            with open(base + ".stats") as f:
                s = json.load(f)
            counters = (
                s["after"]["token_fetches"] - s["before"]["token_fetches"],
                # less the after-query's own connection and the harness's control requests
                s["after"]["connections"] - s["before"]["connections"] - 1 - s["extra"],
            )
        out.append((read_lines(base + ".jsonl"), counters))
        r += 1
    return out


def median(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    m = statistics.median(values)
    return int(m) if float(m).is_integer() else round(m, 1)


def summarise(name, index=0):
    """The median figures of one implementation (line INDEX of each round)."""
    runs = [(lines[index], counters) for lines, counters in rounds(name) if len(lines) > index]
    if not runs:
        return None
    rates = [d["orders_per_sec"] for d, _ in runs]
    first = runs[0][0]
    return {
        "impl": first["impl"] if "impl" in first else name,
        "orders": first["orders"],
        "ok": min(d.get("ok", d["orders"]) for d, _ in runs),
        "orders_per_sec": median(rates),
        "rate_range": (min(rates), max(rates)),
        "p50": median([d["latency_us"]["p50"] for d, _ in runs]),
        "p99": median([d["latency_us"]["p99"] for d, _ in runs]),
        "tokens": median([c[0] for _, c in runs]),
        "conns": median([c[1] for _, c in runs]),
        "runs": len(runs),
        "first": first,
    }


def sh(*args):
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def fmt_rate(x):
    return ("%.0f" % x) if x >= 100 else ("%.1f" % x)


def ratio(x, y):
    return "%.1f×" % (x / y) if x and y else "n/a"


cpu = "?"
with open("/proc/cpuinfo") as f:
    for line in f:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
with open("/proc/meminfo") as f:
    mem_kib = next(int(line.split()[1]) for line in f if line.startswith("MemTotal"))
head = sh("git", "rev-parse", "--short", "HEAD")
dirty = sh("git", "status", "--porcelain", "--untracked-files=no")
machine = [
    ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
    ("nproc", sh("nproc")),
    ("CPU (/proc/cpuinfo)", cpu),
    ("memory", "%.1f GiB" % (mem_kib / 1024 / 1024)),
    ("kernel", platform.release()),
    ("rustc", sh("rustc", "-V")),
    ("python", sh(sys.executable, "-V")),
    ("commit", head + (" + uncommitted changes" if dirty else "")),
    ("load average (1, 5, 15 min)", "%s at the start, %s at the end" % (load_start, load_end)),
    ("script wall time", "%s s" % elapsed),
]
final_path = os.path.join(results, "sandbox-final.stats")
final_orders = 0
if os.path.exists(final_path):
    with open(final_path) as f:
        final_orders = json.load(f)["orders"]

order_runs = [
    ("article_as_written", "the article's `getPrePaidResult`, as written", "Python 3, requests, no session"),
    ("article_fixed", "article (time format fixed)", "Python 3, requests, no session"),
    ("ctypes_legacy", "`wxpay_ctypes.legacy.get_prepaid_result` (drop-in)", "Python 3, ctypes"),
    ("ctypes_client", "`wxpay_ctypes.Client.build_pay_params`", "Python 3, ctypes, one client"),
    ("rust_1", "`wxpay load` (Rust `Client::build_pay_params`)", "1 thread"),
    ("rust_8", "`wxpay load` (Rust `Client::build_pay_params`)", "8 threads, one client"),
]
rows = {name: summarise(name) for name, _, _ in order_runs}
floors = []
i = 0
while True:
    f = summarise("floor", i)
    if f is None:
        break
    floors.append(f)
    i += 1
n_rounds = max([r["runs"] for r in rows.values() if r] + [0])

md = []
w = md.append
w("# Benchmarks")
w("")
w("Produced by `bash scripts/bench.sh`, which builds everything, starts one sandbox, runs every")
w("measurement below against it and rewrites this file. **Measured on a shared 2-core machine** while")
w("other jobs ran (see the load average): take the figures as orders of magnitude and ratios, not as a")
w("specification. Each order figure is the median of %d rounds run one after the other (all" % n_rounds)
w("implementations in turn, then again), each round a single run; the orders/s range shows the spread.")
w("p50 is the steadiest figure; a few scheduling stalls move a run's orders/s and p99 a lot. No figure")
w("is asserted anywhere.")
w("")
w("| machine | |")
w("| --- | --- |")
for k, v in machine:
    w("| %s | %s |" % (k, v))
w("")
w("## Orders end to end, against one sandbox on loopback")
w("")
w("Every order is `19.99` yuan, body `支付测试` (the Rust load sends its own body, `wxpay load`),")
w("client IP `196.168.1.1`, the sandbox's merchant with `input_charset` GBK as in the article.")
w("Latency is timed around each call; orders/s is orders over the run's wall time. Token fetches and")
w("TCP connections are the sandbox's own counters over a run (the harness's control requests taken out).")
w("")
w("| implementation | how | orders | ok | orders/s | (range) | p50 µs | p99 µs | token fetches | TCP connections |")
w("| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
for name, label, how in order_runs:
    r = rows[name]
    if r is None:
        w("| %s | %s | no result | | | | | | | |" % (label, how))
        continue
    w(
        "| %s | %s | %d | %d | %s | %s–%s | %s | %s | %s | %s |"
        % (label, how, r["orders"], r["ok"], fmt_rate(r["orders_per_sec"]), fmt_rate(r["rate_range"][0]),
           fmt_rate(r["rate_range"][1]), r["p50"], r["p99"], r["tokens"], r["conns"])
    )
for f in floors:
    w(
        "| floor: %s | one POST to `/sandbox/notify` per order | %d | %d | %s | %s–%s | %s | %s | 0 | |"
        % (f["impl"].replace("raw POST: ", ""), f["orders"], f["orders"], fmt_rate(f["orders_per_sec"]),
           fmt_rate(f["rate_range"][0]), fmt_rate(f["rate_range"][1]), f["p50"], f["p99"])
    )
floor_rounds = rounds("floor")
if floor_rounds:
    w("")
    w("The floor program opened %s TCP connections per round for its three ways of posting (3 is the"
      % median([c[1] for _, c in floor_rounds]))
    w("minimum, one each; more means a pool opened a spare because a request started before the")
    w("previous one's connection was back in it).")
w("")
a = rows.get("article_as_written")
if a:
    errcodes = a["first"].get("genprepay_errcodes", {})
    w("The article's code as written got **%d prepay ids out of %d** in every round: the sandbox answered %s"
      % (a["ok"], a["orders"], ", ".join("errcode %s (%d×)" % kv for kv in errcodes.items()) or "?"))
    w("to its genprepay calls, because `time_start`/`time_expire` are Unix seconds where the protocol wants")
    w("`yyyyMMddHHmmss` (PROTOCOL.md §1.2, §3). Its orders/s is the rate at which it *fails*, two round")
    w("trips each.")
f = rows.get("article_fixed")
if f:
    d = f["first"]
    seen = d.get("defects_seen", {})
    w("With only the time format fixed (`--fix-time-format`, the lines marked `BENCH FIX` in the port)")
    w("every order goes through, with the article's other defects (first round): %d of %d orders charged"
      % (seen.get("wrong_amount_fen", 0), d["ok"]))
    w("%s fen instead of %s (float money), %d final packages `sign=WXPay` (the app SDK wants `Sign=WXPay`;"
      % (d.get("charged_fen"), round(float(d.get("amount_yuan", "0")) * 100), seen.get("final_package_not_Sign=WXPay", 0)))
    w("the sandbox never sees it), one token fetch and two new TCP connections per order, and a")
    w("three-digit `addtion` (`randint(10, 100)`) in %d of the orders." % seen.get("three_digit_addtion", 0))
w("")

w("## Ratios (of the medians)")
w("")
w("| comparison | orders/s | p50 latency |")
w("| --- | ---: | ---: |")
art = rows.get("article_fixed")
for lib, lib_label in [("rust_1", "Rust, 1 thread"), ("ctypes_client", "ctypes `Client`"), ("ctypes_legacy", "ctypes drop-in")]:
    L = rows.get(lib)
    if L and art:
        w("| libwxpay (%s) vs article (time format fixed) | %s the rate | %s lower |"
          % (lib_label, ratio(L["orders_per_sec"], art["orders_per_sec"]), ratio(art["p50"], L["p50"])))
if rows.get("rust_8") and art:
    w("| libwxpay (Rust, 8 threads) vs article (time format fixed) | %s the rate | |"
      % ratio(rows["rust_8"]["orders_per_sec"], art["orders_per_sec"]))
L = rows.get("rust_1")
for fl in floors:
    if L:
        w("| libwxpay (Rust, 1 thread) vs floor (%s) | %.0f%% of the floor's rate | %s the floor's |"
          % (fl["impl"].replace("raw POST: ", ""), 100.0 * L["orders_per_sec"] / fl["orders_per_sec"], ratio(L["p50"], fl["p50"])))
w("")

w("## Signing per order, and the cost of crossing into the library")
w("")
w("Mean ns per operation, the median of 7 batches, one run (no network). Signing one order is the")
w("package MD5 plus the two SHA1 signatures; the call rows sign the app's final parameters (6 fields,")
w("`legacy-sha1`) from the same JSON text in each language.")
w("")
w("| what | ns per op | command |")
w("| --- | ---: | --- |")
sign = {}
for name in ["sign_rust", "sign_article", "sign_c", "sign_ctypes", "criterion"]:
    for d in read_lines(os.path.join(results, name + ".jsonl")):
        ns = d.get("ns_per_op", d.get("ns_per_order"))
        sign[d["impl"]] = ns
        w("| %s | %s | `%s` |" % (d["impl"], ns, cmd(name)))
w("")


def find(prefix):
    return next((v for k, v in sign.items() if k.startswith(prefix)), None)


rust_sign = find("Rust: sign(legacy-sha1) on ready")
rust_json = find("Rust: parse JSON")
c_sign = find("C -> libwxpay.so: wxpay_sign")
c_bare = find("C -> libwxpay.so: wxpay_version")
py_sign = find("Python ctypes: wxpay_ctypes.sign")
py_bare = find("Python ctypes: wxpay_version")
art_order = find("article signing")
rust_order = find("Rust: all signing for one order (GBK")
if None not in (rust_sign, rust_json, c_sign, c_bare):
    w("- C ABI: `wxpay_sign` from C costs %.0f ns more than the Rust `sign()` on ready fields, of which %.0f ns"
      % (c_sign - rust_sign, rust_json - rust_sign))
    w("  is parsing the JSON argument; the rest is reading the C strings, the panic boundary and the")
    w("  returned string. A bare call into the .so costs %s ns." % c_bare)
if None not in (py_sign, c_sign, py_bare):
    w("- ctypes: `wxpay_ctypes.sign` costs %.0f ns more than the same call from C; a bare ctypes call is %s ns,"
      % (py_sign - c_sign, py_bare))
    w("  the rest is ctypes' argument conversion and the wrapper's Python (serialising the dict to JSON,")
    w("  encoding the key, reading and freeing the answer; benches/article/ctypes_overhead.py splits it).")
if art_order and rust_order:
    w("- Signing one order: %s ns in the article's Python, %s ns in Rust (GBK both): %s."
      % (art_order, rust_order, ratio(art_order, rust_order)))
w("")

size_path = os.path.join(results, "size.json")
if os.path.exists(size_path):
    with open(size_path) as f:
        s = json.load(f)

    def mib(b):
        return "%.2f" % (b / 2**20)

    w("## Library size")
    w("")
    w("`libwxpay.so` with default features (what an app embeds: no sandbox, no CLI), size-optimised")
    w("(`opt-level = \"z\"`, LTO, `codegen-units = 1`, `panic = \"unwind\"` kept so that panics stay")
    w("catchable at the C boundary) through a profile given on the command line (Cargo.toml unchanged),")
    w("then a copy `strip`ped:")
    w("")
    w("| build | stripped bytes | MiB | unstripped bytes |")
    w("| --- | ---: | ---: | ---: |")
    w("| `cargo rustc --lib --crate-type cdylib`, size profile (LTO applied) | %d | %s | %d |"
      % (s["cdylib_stripped"], mib(s["cdylib_stripped"]), s["cdylib_unstripped"]))
    w("| `cargo build --lib`, size profile (LTO silently not applied, see below) | %d | %s | %d |"
      % (s["build_stripped"], mib(s["build_stripped"]), s["build_unstripped"]))
    w("| for comparison: `cargo build --release --features cli` (sandbox inside, no LTO) | %d | %s | %d |"
      % (s["release_cli_stripped"], mib(s["release_cli_stripped"]), s["release_cli_unstripped"]))
    w("")
    w("The crate's `crate-type` is `[\"lib\", \"cdylib\", \"staticlib\"]`; with `lib` in the list Cargo does")
    w("not pass `-C lto` to rustc (`cargo build -v` shows it), so `lto = true` has no effect on the")
    w("`libwxpay.so` that `cargo build` makes. Building the cdylib alone (`cargo rustc --crate-type")
    w("cdylib`) applies it. %d `wxpay_*` functions are exported. Commands:" % s["exports"])
    w("")
    w("```sh")
    w(s["cdylib_command"])
    w(s["build_command"])
    w("strip -o libwxpay.stripped.so target/size/libwxpay.so   # after each")
    w("```")
    w("")

w("## Commands")
w("")
w("`$BASE` is the sandbox's address (`target/release/wxpay sandbox --port 0` prints it first). The")
w("script sets `WXPAY_LIB=target/release/libwxpay.so` and `PYTHONPATH=bindings/python-ctypes`, and runs")
w("the Python in a virtualenv under `target/bench/venv` with `requests==2.34.2` from PyPI.")
w("")
for name, label, how in order_runs + [("floor", "floor (examples/raw_roundtrip.rs)", "")]:
    if cmd(name):
        w("- %s%s: `%s`" % (label, " (%s)" % how if name.startswith("rust") else "", cmd(name)))
w("")
w("## What is measured, and how the article's code was handled")
w("")
w("- `benches/article/get_prepaid_result.py` is a Python 3 port of the article's `getPrePaidResult`")
w("  and helpers with every defect kept (a token fetch per order, `requests` without a session, float")
w("  money, GBK package, Unix-second times, printed client IP, `sign=WXPay`); only what Python 3 forces")
w("  was changed. `getAccessToken` and `createSHA1Signature` are not shown in the article and were")
w("  written in its style. As written it gets no order through the sandbox (47001), so the comparison")
w("  uses the variant with only the time format fixed; the as-written run is reported with its failures.")
w("- The libwxpay runs use one client each (the token fetched once, connections kept alive); the")
w("  ctypes drop-in keeps one client per configuration for the process, as documented.")
w("- The floor is one keep-alive HTTP POST of a genprepay-sized body to the same sandbox: what a warm")
w("  `build_pay_params` cannot go under (one genprepay round trip per order). The sandbox does more")
w("  work on a genprepay (it checks three signatures) than on `/sandbox/notify`.")
w("- The sandbox finds an order number with a linear scan of every order it has accepted, so a")
w("  genprepay slows down as orders pile up (about +70 µs at p50 after 30,000 orders on this machine).")
w("  All rounds share one sandbox, which held %d orders at the end: a few µs for the last rounds." % final_orders)
w("  Keep ORDERS and ORDERS_MT small, or later runs pay for earlier ones.")
w("- Signing figures come from plain timing loops (`examples/sign_timing.rs`, `benches/c/sign_loop.c`,")
w("  the Python harnesses); `BENCH_CRITERION=1 bash scripts/bench.sh` adds `cargo bench --bench signing`.")
w("")
with open(out_path, "w", encoding="utf-8") as out:
    out.write("\n".join(md))
print("wrote %s" % out_path, file=sys.stderr)
