//! The `wxpay` command line as a user runs it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};

fn wxpay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wxpay"))
}

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = wxpay()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wxpay runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    echo(child.wait_with_output().expect("wxpay exits"))
}

/// Passes on what a child printed, to the test's own output (libtest shows it
/// for a failing test, or for every test with `--nocapture`), so its log
/// lines (`WXPAY_LOG`) are seen with the rest.
fn echo(output: Output) -> Output {
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// Where a long-running child's standard error goes: nowhere, unless
/// `WXPAY_LOG` asks for its log lines.
fn child_stderr() -> Stdio {
    if std::env::var_os("WXPAY_LOG").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const PAY: [&str; 9] = [
    "pay",
    "--out-trade-no",
    "A1001",
    "--amount",
    "19.99",
    "--body",
    "支付测试",
    "--client-ip",
    "196.168.1.1",
];

#[test]
fn pay_runs_against_the_embedded_sandbox() {
    let output = run(&PAY, "");
    assert!(output.status.success(), "{}", stderr(&output));
    let params: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON on stdout");
    assert_eq!(params["appid"], "wxd930ea5d5a258f4f");
    assert_eq!(params["partnerid"], "1900000109");
    assert_eq!(params["package"], "Sign=WXPay");
    assert_eq!(params["total_fee"], 1999);
    assert_eq!(params["out_trade_no"], "A1001");
    assert_eq!(params["sign"].as_str().map(str::len), Some(40));
    assert_eq!(params["timestamp"].as_str().map(str::len), Some(10));
    assert!(params["prepayid"].as_str().is_some_and(|p| !p.is_empty()));
}

#[test]
fn pay_reports_bad_input_on_stderr_with_a_failure_status() {
    for (flag, value, needle) in [
        ("--amount", "0.001", "--amount"),
        ("--amount", "1e2", "--amount"),
        ("--amount", "0", "--amount"),
        ("--client-ip", "::1", "client_ip"),
        ("--out-trade-no", "has space", "out_trade_no"),
    ] {
        let mut args = PAY.to_vec();
        let i = args.iter().position(|a| *a == flag).expect("flag") + 1;
        args[i] = value;
        let output = run(&args, "");
        assert!(!output.status.success(), "{flag} {value}");
        assert!(stdout(&output).is_empty());
        assert!(
            stderr(&output).contains(needle),
            "{flag} {value}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn pay_reads_a_config_file() {
    let dir = std::env::temp_dir().join(format!("wxpay-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("bad.json");
    std::fs::write(&path, r#"{"appid":"wx1","app_secret":"s","app_key":"k","partner_id":"1","partner_key":"p","notify_url":"https://x.example/n","api_base":"http://api.weixin.qq.com"}"#).expect("write");
    let mut args = PAY.to_vec();
    args.extend(["--config", path.to_str().expect("utf-8 path")]);
    let output = run(&args, "");
    assert!(!output.status.success());
    assert!(stderr(&output).contains("api_base"), "{}", stderr(&output));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sign_legacy_package_reproduces_the_public_vector() {
    let fields = r#"{"bank_type":"WX","body":"支付测试","fee_type":"1","input_charset":"UTF-8",
        "notify_url":"http://weixin.qq.com","out_trade_no":"7240b65810859cbf2a8d9f76a638c0a3",
        "partner":"1900000109","spbill_create_ip":"196.168.1.1","total_fee":"1"}"#;
    let output = run(
        &[
            "sign",
            "legacy-package",
            "--key",
            "8934e7d15453e97507ef794cf7b0519d",
        ],
        fields,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), "7F77B507B755B3262884291517E380F8");

    let output = run(
        &[
            "sign",
            "legacy-package",
            "--key",
            "8934e7d15453e97507ef794cf7b0519d",
            "--explain",
        ],
        fields,
    );
    let text = stdout(&output);
    assert!(!text.contains("8934e7d15453e97507ef794cf7b0519d"), "{text}");
    assert!(text.contains(&format!("&key={}", "*".repeat(32))), "{text}");
    assert!(
        text.contains("bank_type=WX&body=支付测试&fee_type=1"),
        "{text}"
    );
}

#[test]
fn sign_legacy_sha1_masks_the_app_key() {
    let output = wxpay()
        .args([
            "sign",
            "legacy-sha1",
            "--key-env",
            "WXPAY_TEST_KEY",
            "--explain",
        ])
        .env("WXPAY_TEST_KEY", "SECRETKEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(br#"{"noncestr":"n","appid":"wx1","timestamp":1399514976}"#)?;
            child.wait_with_output().map(echo)
        })
        .expect("runs");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(!text.contains("SECRETKEY"), "{text}");
    assert!(
        text.contains("appid=wx1&appkey=*********&noncestr=n&timestamp=1399514976"),
        "{text}"
    );
    let sign = text.lines().last().expect("signature line");
    assert_eq!(sign.len(), 40);
}

#[test]
fn sign_rejects_non_flat_input() {
    let output = run(&["sign", "legacy-sha1", "--key", "k"], r#"{"a":{"b":1}}"#);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("\"a\""), "{}", stderr(&output));
}

/// A `wxpay sandbox` process, killed when dropped.
struct SandboxProcess {
    child: Child,
    base_url: String,
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sandbox_process() -> SandboxProcess {
    let mut child = wxpay()
        .args(["sandbox", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(child_stderr())
        .spawn()
        .expect("sandbox starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    SandboxProcess {
        child,
        base_url: line.trim().to_owned(),
    }
}

#[test]
fn the_sandbox_command_serves_other_processes() {
    let sandbox = sandbox_process();
    assert!(
        sandbox.base_url.starts_with("http://127.0.0.1:"),
        "{}",
        sandbox.base_url
    );
    let mut args = PAY.to_vec();
    args.extend(["--api-base", &sandbox.base_url]);
    for no in ["P1", "P2"] {
        args[2] = no;
        let output = run(&args, "");
        assert!(output.status.success(), "{}", stderr(&output));
    }
    // Each `wxpay pay` is its own process with its own token cache.
    let stats = http_get(&format!("{}/sandbox/stats", sandbox.base_url));
    assert_eq!(stats["orders"], 2, "{stats}");
    assert_eq!(stats["token_fetches"], 2, "{stats}");
    let config = http_get(&format!("{}/sandbox/config", sandbox.base_url));
    assert_eq!(config["api_base"], sandbox.base_url.as_str());
}

fn http_get(url: &str) -> serde_json::Value {
    use wxpay::http::{HttpRequest, HttpTransport, Method, Transport};
    let transport = HttpTransport::new(std::time::Duration::from_secs(5)).expect("transport");
    let response = transport
        .send(&HttpRequest {
            method: Method::Get,
            url: url.parse().expect("url"),
            body: Vec::new(),
            content_type: None,
            headers: Vec::new(),
        })
        .expect("GET");
    serde_json::from_slice(&response.body).expect("JSON")
}

#[test]
fn sign_v2_reproduces_the_public_vector() {
    let fields = r#"{"appid":"wxd930ea5d5a258f4f","body":"test","device_info":"1000","mch_id":"10000100","nonce_str":"ibuaiVcKdpRxkhJA"}"#;
    let output = run(
        &[
            "sign",
            "v2-md5",
            "--key",
            "192006250b4c09247ec02edce69f6a2d",
        ],
        fields,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), "9A0A8659F005D6984697E2CA0A9CF3B7");
    let output = run(
        &[
            "sign",
            "v2-hmac-sha256",
            "--key",
            "192006250b4c09247ec02edce69f6a2d",
        ],
        fields,
    );
    assert_eq!(
        stdout(&output).trim(),
        "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
    );
}

fn http_post(url: &str, body: &str) -> u16 {
    use wxpay::http::{HttpRequest, HttpTransport, Method, Transport};
    let transport = HttpTransport::new(std::time::Duration::from_secs(5)).expect("transport");
    transport
        .send(&HttpRequest {
            method: Method::Post,
            url: url.parse().expect("url"),
            body: body.as_bytes().to_vec(),
            content_type: Some("application/json"),
            headers: Vec::new(),
        })
        .expect("POST")
        .status
}

#[test]
fn the_v2_order_life_cycle_from_the_command_line() {
    let sandbox = sandbox_process();
    let base = sandbox.base_url.as_str();
    let gateway = ["--api", "v2", "--api-base", base];
    let mut pay = PAY.to_vec();
    pay[2] = "CLIV2";
    pay.extend(gateway);
    let output = run(&pay, "");
    assert!(output.status.success(), "{}", stderr(&output));
    let params: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(params["partnerid"], "10000100");
    assert_eq!(params["sign"].as_str().map(str::len), Some(32));

    assert_eq!(
        http_post(
            &format!("{base}/sandbox/pay"),
            r#"{"out_trade_no":"CLIV2"}"#
        ),
        204
    );
    let mut query = vec!["query", "--out-trade-no", "CLIV2"];
    query.extend(gateway);
    let output = run(&query, "");
    assert!(output.status.success(), "{}", stderr(&output));
    let status: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(status["trade_state"], "SUCCESS");
    assert_eq!(status["total_fee"], 1999);

    let mut refund = vec![
        "refund",
        "--out-trade-no",
        "CLIV2",
        "--out-refund-no",
        "CLIR1",
        "--total",
        "19.99",
        "--refund",
        "0.99",
    ];
    refund.extend(gateway);
    let output = run(&refund, "");
    assert!(output.status.success(), "{}", stderr(&output));
    let receipt: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(receipt["refund_fee"], 99);

    let mut refunds = vec!["refund-query", "--out-trade-no", "CLIV2"];
    refunds.extend(gateway);
    let output = run(&refunds, "");
    let list: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(list[0]["out_refund_no"], "CLIR1");

    let mut close = vec!["close", "--out-trade-no", "CLIV2"];
    close.extend(gateway);
    let output = run(&close, "");
    assert!(!output.status.success());
    assert!(stderr(&output).contains("ORDERPAID"), "{}", stderr(&output));
}

#[test]
fn notify_verify_prints_verified_fields_or_the_reason() {
    use wxpay::crypto::sign::{sign_v2, Fields, SignType};
    let dir = std::env::temp_dir().join(format!("wxpay-cli-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("v2.json");
    std::fs::write(
        &config,
        r#"{"api":"v2","appid":"wxd930ea5d5a258f4f","mch_id":"10000100","api_key":"192006250b4c09247ec02edce69f6a2d","notify_url":"https://example.com/n"}"#,
    )
    .expect("write");
    let mut fields: Fields = [
        ("appid", "wxd930ea5d5a258f4f"),
        ("mch_id", "10000100"),
        ("nonce_str", "n"),
        ("out_trade_no", "N1"),
        ("result_code", "SUCCESS"),
        ("return_code", "SUCCESS"),
        ("total_fee", "29"),
        ("transaction_id", "4200000001"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let key = wxpay::Secret::new("192006250b4c09247ec02edce69f6a2d");
    let sign = sign_v2(&fields, &key, SignType::Md5).into_signature();
    fields.insert("sign".into(), sign);
    let body = wxpay::api::v2::xml::write(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let path = config.to_str().expect("utf-8");

    let output = run(
        &["notify", "verify", "--config", path, "--expect-fee", "29"],
        &body,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let verified: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(verified["notification"]["out_trade_no"], "N1");
    assert!(verified["reply"]
        .as_str()
        .is_some_and(|r| r.contains("SUCCESS")));

    let output = run(
        &["notify", "verify", "--config", path, "--expect-fee", "2900"],
        &body,
    );
    assert!(!output.status.success());
    assert!(stderr(&output).contains("total_fee"), "{}", stderr(&output));

    let forged = body.replace("<![CDATA[29]]>", "<![CDATA[1]]>");
    let output = run(&["notify", "verify", "--config", path], &forged);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("signature"), "{}", stderr(&output));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn notify_verify_checks_v3_headers_and_decrypts() {
    use wxpay::crypto::rsa::MerchantKey;
    let dir = std::env::temp_dir().join(format!("wxpay-cli-v3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sandbox =
        wxpay::sandbox::Sandbox::start(wxpay::sandbox::SandboxConfig::default()).expect("sandbox");
    let config = serde_json::json!({
            "api": "v3",
            "appid": "wxd930ea5d5a258f4f",
            "mchid": "1900000109",
            "merchant_private_key": wxpay::sandbox::defaults::MERCHANT_PRIVATE_KEY,
            "merchant_serial_no": wxpay::sandbox::defaults::MERCHANT_SERIAL_NO,
            "api_v3_key": wxpay::sandbox::defaults::API_V3_KEY,
            "wechatpay_public_key": include_str!("../src/sandbox/keys/platform_public_key.pem"),
            "wechatpay_public_key_id": "PUB_KEY_ID_T",
            "notify_url": "https://example.com/n",
            "api_base": sandbox.base_url(),
    });
    let path = dir.join("v3.json");
    std::fs::write(&path, config.to_string()).expect("write");

    let transaction = r#"{"mchid":"1900000109","appid":"wxd930ea5d5a258f4f","out_trade_no":"N3","transaction_id":"4200000003","trade_state":"SUCCESS","amount":{"total":29}}"#;
    let ciphertext = wxpay::crypto::aead::encrypt(
        wxpay::sandbox::defaults::API_V3_KEY.as_bytes(),
        "0123456789ab",
        "transaction",
        transaction,
    )
    .expect("seals");
    let body = serde_json::json!({
        "id": "EV-1", "event_type": "TRANSACTION.SUCCESS", "resource_type": "encrypt-resource",
        "resource": {"algorithm": "AEAD_AES_256_GCM", "ciphertext": ciphertext,
                     "nonce": "0123456789ab", "associated_data": "transaction"}
    })
    .to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let signature = MerchantKey::from_pem(include_str!("../src/sandbox/keys/platform_key.pem"))
        .expect("key")
        .sign(format!("{now}\nn1\n{body}\n").as_bytes());
    let headers = [
        "Wechatpay-Serial: PUB_KEY_ID_T".to_owned(),
        format!("Wechatpay-Signature: {signature}"),
        format!("Wechatpay-Timestamp: {now}"),
        "Wechatpay-Nonce: n1".to_owned(),
    ];
    let mut args = vec![
        "notify",
        "verify",
        "--config",
        path.to_str().expect("utf-8"),
        "--expect-fee",
        "29",
    ];
    for h in &headers {
        args.extend(["--header", h.as_str()]);
    }
    let output = run(&args, &body);
    assert!(output.status.success(), "{}", stderr(&output));
    let verified: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(verified["notification"]["out_trade_no"], "N3");
    assert_eq!(verified["notification"]["total_fee"], 29);

    let output = run(&args[..args.len() - 2], &body.replace("EV-1", "EV-2"));
    assert!(!output.status.success());
    assert!(stderr(&output).contains("rejected"), "{}", stderr(&output));
    std::fs::remove_dir_all(&dir).ok();
}
