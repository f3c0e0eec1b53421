//! The C ABI from C: the checked-in header is the one cbindgen generates, and
//! the C programs of `tests/c/` compile against it (`gcc -Wall -Wextra
//! -Werror`), link against both the shared and the static library cargo
//! built, and behave against an in-process sandbox: `pay.c` (the 2014 flow
//! from many threads), `abuse.c` (every function misused) and `lifecycle.c`
//! (an API v2 order from payment to refund, with its own notify_url) and
//! `v3.c` (the same for API v3, in public-key and certificate mode, verifying
//! the signed notification with its `Wechatpay-*` headers).
//!
//! Needs `gcc` on the PATH. The libraries are the ones in the target
//! directory of this test executable (`target/<profile>/libwxpay.{so,a}`),
//! which cargo builds with the test because the `[lib]` crate types include
//! `cdylib` and `staticlib`; if they are missing the test fails and says so.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use wxpay::crypto::sign::SignType;
use wxpay::model::TradeState;
use wxpay::sandbox::{Endpoint, Sandbox, SandboxConfig};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>/`: the test executable lives in its `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the executable is in a directory");
    if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("deps/ has a parent").to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

#[cfg(target_os = "macos")]
const SHARED_LIB: &str = "libwxpay.dylib";
#[cfg(not(target_os = "macos"))]
const SHARED_LIB: &str = "libwxpay.so";
const STATIC_LIB: &str = "libwxpay.a";

/// The native libraries Rust's std (and so the static libwxpay) needs on
/// Linux; `cargo rustc --lib -- --print native-static-libs` lists them.
const STATIC_LINK_LIBS: [&str; 6] = ["-lpthread", "-ldl", "-lm", "-lrt", "-lutil", "-lgcc_s"];

#[derive(Clone, Copy, Debug)]
enum Link {
    Shared,
    Static,
}

fn library(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(
        path.is_file(),
        "{} does not exist. cargo builds it together with this test because Cargo.toml's \
         [lib] crate-type lists cdylib and staticlib; run `cargo build --all-features` (same \
         profile) and try again, and check the crate types were not removed.",
        path.display()
    );
    path
}

fn run(command: &mut Command) -> Output {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    // Passed on to the test's own output (shown on failure, or always with
    // `--nocapture`), so the programs' log lines (`WXPAY_LOG`) are seen too.
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    output
}

fn check_gcc() {
    let ok = Command::new("gcc")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "gcc is needed to compile tests/c/*.c (apt-get install -y gcc); it is not on the PATH"
    );
}

/// Compiles `tests/c/<program>.c` linked `link`ly; returns the executable.
fn compile(program: &str, link: Link, out_dir: &Path) -> PathBuf {
    let root = manifest_dir();
    let exe = out_dir.join(format!("{program}-{link:?}").to_lowercase());
    let mut gcc = Command::new("gcc");
    gcc.args(["-Wall", "-Wextra", "-Werror", "-g", "-pthread"])
        .arg("-I")
        .arg(root.join("include"))
        .arg("-o")
        .arg(&exe)
        .arg(root.join("tests/c").join(format!("{program}.c")));
    match link {
        Link::Shared => {
            let lib = library(SHARED_LIB);
            let dir = lib.parent().expect("the library is in a directory");
            gcc.arg("-L")
                .arg(dir)
                .arg("-lwxpay")
                .arg(format!("-Wl,-rpath,{}", dir.display()));
        }
        Link::Static => {
            gcc.arg(library(STATIC_LIB)).args(STATIC_LINK_LIBS);
        }
    }
    let output = run(&mut gcc);
    assert!(
        output.status.success(),
        "gcc failed for {program} ({link:?}):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

/// A scratch directory under the target directory, removed when dropped
/// (the statically linked test programs are large).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(test: &str) -> ScratchDir {
        let dir = profile_dir()
            .join("c_abi")
            .join(format!("{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the C build directory");
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn header_is_up_to_date() {
    let root = manifest_dir();
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen reads src/ffi/")
        .write(&mut generated);
    let header_path = root.join("include/wxpay.h");
    let checked_in = std::fs::read(&header_path).unwrap_or_default();
    if checked_in != generated {
        let generated = String::from_utf8_lossy(&generated);
        let checked_in = String::from_utf8_lossy(&checked_in);
        let first_difference = generated
            .lines()
            .zip(checked_in.lines())
            .position(|(a, b)| a != b)
            .map(|i| i + 1)
            .unwrap_or_else(|| generated.lines().count().min(checked_in.lines().count()) + 1);
        panic!(
            "{} is not what cbindgen generates from src/ffi/ and cbindgen.toml \
             (first difference at line {first_difference}).\n\
             Regenerate it with:\n\n    WXPAY_WRITE_HEADER=1 cargo build\n\n\
             and commit the result.",
            header_path.display()
        );
    }
}

/// cbindgen reads `src/ffi/mod.rs` and the files its `mod` declarations
/// name: a file it missed, or an item it could not read, would be missing
/// from the header without a word. Every `extern "C"` function and public
/// constant of `src/ffi/*.rs` must be declared there.
#[test]
fn header_declares_every_export_of_src_ffi() {
    let root = manifest_dir();
    let header = std::fs::read_to_string(root.join("include/wxpay.h")).expect("the header");
    let mut exports = Vec::new();
    for entry in std::fs::read_dir(root.join("src/ffi")).expect("src/ffi/") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("a source file");
        for line in source.lines().map(str::trim_start) {
            let item = [
                "pub extern \"C\" fn ",
                "pub unsafe extern \"C\" fn ",
                "pub const ",
            ]
            .iter()
            .find_map(|start| line.strip_prefix(start));
            if let Some(item) = item {
                let name: String = item
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                exports.push((path.display().to_string(), name));
            }
        }
    }
    assert!(exports.len() >= 19, "too few exports found: {exports:?}");
    for (file, name) in exports {
        let declared = [
            format!(" {name}("),
            format!("*{name}("),
            format!("#define {name} "),
        ]
        .iter()
        .any(|declaration| header.contains(declaration.as_str()));
        assert!(declared, "{name} of {file} is not in include/wxpay.h");
    }
}

#[test]
fn pay_program_builds_pay_params_from_many_threads() {
    check_gcc();
    let dir = ScratchDir::new("pay");
    let sandbox = Sandbox::start(SandboxConfig::default()).expect("start the sandbox");
    // The C program builds its config from the default sandbox account; the
    // sandbox's own view of it must agree.
    let config: Value =
        serde_json::from_str(&sandbox.client_config_json()).expect("the sandbox config is JSON");
    assert_eq!(config["api_base"], sandbox.base_url());

    let mut expected_orders = 0;
    for link in [Link::Shared, Link::Static] {
        let exe = compile("pay", link, &dir.0);
        // Without a gateway it says how to call it.
        let usage = run(Command::new(&exe).env_remove("WXPAY_SANDBOX_URL"));
        assert_eq!(usage.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&usage.stderr).contains("usage"));

        let output = run(Command::new(&exe).args([sandbox.base_url(), "3", "2"]));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "pay ({link:?}) failed:\n{stdout}\n{stderr}"
        );
        let mut lines = stdout.lines();
        assert_eq!(
            lines.next(),
            Some(format!("version {}", env!("CARGO_PKG_VERSION")).as_str())
        );
        let params: Vec<Value> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("params "))
            .map(|l| serde_json::from_str(l).expect("params are JSON"))
            .collect();
        assert_eq!(params.len(), 6, "{stdout}");
        expected_orders += params.len();
        let recorded = sandbox.orders();
        let prepayids: HashSet<&str> = recorded.iter().map(|o| o.prepayid.as_str()).collect();
        for p in &params {
            assert_eq!(p["appid"], "wxd930ea5d5a258f4f");
            assert_eq!(p["partnerid"], "1900000109");
            assert_eq!(p["package"], "Sign=WXPay");
            assert_eq!(p["sign"].as_str().map(str::len), Some(40));
            let prepayid = p["prepayid"].as_str().expect("prepayid is a string");
            assert!(
                prepayids.contains(prepayid),
                "{prepayid} is not a prepay id the sandbox issued"
            );
            let no = p["out_trade_no"].as_str().expect("out_trade_no");
            let order = recorded
                .iter()
                .find(|o| o.out_trade_no == no)
                .expect("the order is recorded");
            assert_eq!(Some(u64::from(order.total_fee)), p["total_fee"].as_u64());
        }
        // Thread t pays "t+1.00" and "t+1.01" yuan: exact fen.
        let fees: HashSet<u64> = params
            .iter()
            .filter_map(|p| p["total_fee"].as_u64())
            .collect();
        assert_eq!(
            fees,
            HashSet::from([100, 101, 200, 201, 300, 301]),
            "{stdout}"
        );
        assert!(
            stdout.contains("\nsign 7F77B507B755B3262884291517E380F8\n"),
            "{stdout}"
        );
        assert!(stdout.ends_with("pay: 6 orders, 0 failed\n"), "{stdout}");
    }
    assert_eq!(sandbox.orders().len(), expected_orders);
    // One client per run, one token each: the threads of a run share it.
    assert_eq!(sandbox.stats().token_fetches, 2);
}

#[test]
fn abuse_program_gets_codes_and_error_documents() {
    check_gcc();
    let dir = ScratchDir::new("abuse");
    let sandbox = Sandbox::start(SandboxConfig::default()).expect("start the sandbox");
    for link in [Link::Shared, Link::Static] {
        let exe = compile("abuse", link, &dir.0);
        sandbox.errcode_next(Endpoint::Genprepay, 1, 45009, "quota");
        let output = run(Command::new(&exe).arg(sandbox.base_url()));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "abuse ({link:?}) failed:\n{stdout}\n{stderr}"
        );
        assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    }
}

#[test]
fn lifecycle_program_runs_a_v2_order_from_payment_to_refund() {
    check_gcc();
    let dir = ScratchDir::new("lifecycle");
    let programs: Vec<(Link, PathBuf)> = [Link::Shared, Link::Static]
        .into_iter()
        .map(|link| (link, compile("lifecycle", link, &dir.0)))
        .collect();
    let usage = run(Command::new(&programs[0].1).env_remove("WXPAY_SANDBOX_URL"));
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("usage"));

    for (sign_type, name) in [
        (SignType::Md5, "MD5"),
        (SignType::HmacSha256, "HMAC-SHA256"),
    ] {
        let sandbox = Sandbox::start(SandboxConfig {
            sign_type,
            notify_retry_ms: 50,
            ..SandboxConfig::default()
        })
        .expect("start the sandbox");
        for (link, exe) in &programs {
            // The C program is the merchant: it listens for the sandbox's
            // notifications itself and asks the sandbox to simulate the
            // user paying (POST /sandbox/pay).
            let output = run(Command::new(exe).args([sandbox.base_url(), name]));
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                output.status.success(),
                "lifecycle ({link:?}, {name}) failed:\n{stdout}\n{stderr}"
            );
            assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
            let no = stdout
                .lines()
                .find_map(|l| l.strip_prefix("order "))
                .expect("the program names its order");

            // The sandbox saw the same life cycle.
            let orders = sandbox.v2_orders();
            let order = orders
                .iter()
                .find(|o| o.out_trade_no == no)
                .expect("the order is recorded");
            assert_eq!(order.total_fee, 1999);
            assert_eq!(order.trade_state, TradeState::Refund, "{order:?}");
            assert_eq!(order.refunds.len(), 1, "{order:?}");
            assert_eq!(order.refunds[0].refund_fee, 999);
            assert_eq!(order.refunds[0].out_refund_no, format!("R{no}"));
            let unpaid = orders
                .iter()
                .find(|o| o.out_trade_no == format!("{no}U"))
                .expect("the second order is recorded");
            assert_eq!(unpaid.trade_state, TradeState::Closed);
            // Both notifications were acknowledged with the reply libwxpay
            // gave the C program.
            let notifications: Vec<_> = sandbox
                .notifications()
                .into_iter()
                .filter(|n| n.out_trade_no == no)
                .collect();
            let kinds: Vec<&str> = notifications.iter().map(|n| n.kind.as_str()).collect();
            assert_eq!(kinds, ["payment", "refund"], "{notifications:?}");
            assert!(
                notifications.iter().all(|n| n.acknowledged),
                "{notifications:?}"
            );
        }
    }
}

#[test]
fn v3_program_runs_an_order_from_payment_to_refund_in_both_modes() {
    check_gcc();
    let dir = ScratchDir::new("v3");
    let programs: Vec<(Link, PathBuf)> = [Link::Shared, Link::Static]
        .into_iter()
        .map(|link| (link, compile("v3", link, &dir.0)))
        .collect();
    let usage = run(Command::new(&programs[0].1).env_remove("WXPAY_SANDBOX_URL"));
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("usage"));

    for (certificate_mode, mode) in [(false, "public-key"), (true, "certificate")] {
        let sandbox = Sandbox::start(SandboxConfig {
            v3_certificate_mode: certificate_mode,
            notify_retry_ms: 50,
            ..SandboxConfig::default()
        })
        .expect("start the sandbox");
        for (link, exe) in &programs {
            let output = run(Command::new(exe).arg(sandbox.base_url()));
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                output.status.success(),
                "v3 ({link:?}, {mode}) failed:\n{stdout}\n{stderr}"
            );
            assert!(stdout.contains(&format!("mode {mode}\n")), "{stdout}");
            assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
            let no = stdout
                .lines()
                .find_map(|l| l.strip_prefix("order "))
                .expect("the program names its order");
            // The sandbox's notification was acknowledged with the status and
            // (empty) reply libwxpay gave the C program.
            let notifications: Vec<_> = sandbox
                .notifications()
                .into_iter()
                .filter(|n| n.out_trade_no == no)
                .collect();
            assert_eq!(notifications.len(), 1, "{notifications:?}");
            assert!(notifications[0].acknowledged, "{notifications:?}");
        }
    }
}
