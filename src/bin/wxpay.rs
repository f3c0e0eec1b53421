//! The `wxpay` command line: run the APP-payment flow (against the embedded
//! sandbox when no merchant config is given), run the sandbox on its own, and
//! compute signatures for debugging a "signature mismatch".

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use wxpay::config::Api;
use wxpay::crypto::sign::{fields_from_json, sign, Scheme};
use wxpay::model::{OrderRef, RefundRequest};
use wxpay::sandbox::{Sandbox, SandboxConfig};
use wxpay::util::nonce::{NonceSource, RandomNonce};
use wxpay::{Client, Config, Error, Fen, Order, Secret};

/// The port `wxpay sandbox` listens on unless told otherwise.
const DEFAULT_SANDBOX_PORT: u16 = 12580;

#[derive(Parser)]
#[command(
    name = "wxpay",
    version,
    about = "WeChat Pay APP payments: run the flow, run a local sandbox gateway, debug signatures"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole flow for one order and print the app's parameters as JSON.
    ///
    /// Without --config, a sandbox gateway is started in-process with the
    /// public example merchant and the flow runs against it.
    Pay(PayArgs),
    /// Run the sandbox gateway until stopped; the first line of output is its address.
    Sandbox(SandboxArgs),
    /// Sign a flat JSON object of fields read from standard input.
    Sign(SignArgs),
    /// Run many orders through one client from several threads and print a
    /// JSON summary (outcomes, throughput, latency percentiles).
    Load(LoadArgs),
    /// Query an order's state (API v2 and v3).
    Query(QueryArgs),
    /// Close an unpaid order (API v2 and v3).
    Close(CloseArgs),
    /// Refund all or part of a paid order (API v2 and v3).
    Refund(RefundArgs),
    /// List an order's refunds (API v2).
    RefundQuery(QueryArgs),
    /// Work with payment and refund notifications.
    #[command(subcommand)]
    Notify(NotifyCommand),
}

#[derive(Subcommand)]
enum NotifyCommand {
    /// Verify a notification read from standard input (the 2014 query string,
    /// or the v2 XML body) and print its verified fields as JSON, or why it
    /// was rejected (with a failure status).
    Verify(NotifyVerifyArgs),
}

#[derive(Args)]
struct NotifyVerifyArgs {
    /// The merchant configuration (JSON).
    #[arg(long)]
    config: PathBuf,
    /// The amount the order is for, in fen: anything else is rejected.
    #[arg(long)]
    expect_fee: Option<i64>,
    /// The body is an API v2 refund notification.
    #[arg(long)]
    refund: bool,
    /// A header of the notification request, `Name: value` (API v3 needs
    /// its four Wechatpay-* headers); repeat for each.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
}

#[derive(Args)]
struct QueryArgs {
    /// The merchant's trade number.
    #[arg(
        long,
        conflicts_with = "transaction_id",
        required_unless_present = "transaction_id"
    )]
    out_trade_no: Option<String>,
    /// WeChat's transaction id.
    #[arg(long)]
    transaction_id: Option<String>,
    #[command(flatten)]
    gateway: GatewayArgs,
}

#[derive(Args)]
struct CloseArgs {
    /// The merchant's trade number.
    #[arg(long)]
    out_trade_no: String,
    #[command(flatten)]
    gateway: GatewayArgs,
}

#[derive(Args)]
struct RefundArgs {
    /// The merchant's trade number.
    #[arg(long)]
    out_trade_no: String,
    /// The merchant's refund number (unique per refund; a retry reuses it).
    #[arg(long)]
    out_refund_no: String,
    /// The order's total, in yuan.
    #[arg(long)]
    total: String,
    /// The amount to refund, in yuan.
    #[arg(long)]
    refund: String,
    /// A reason shown to the user.
    #[arg(long)]
    desc: Option<String>,
    #[command(flatten)]
    gateway: GatewayArgs,
}

#[derive(Args)]
struct PayArgs {
    /// The merchant's trade number (1 to 32 of A-Z a-z 0-9 _ - | * @).
    #[arg(long)]
    out_trade_no: String,
    /// The amount in yuan, as a decimal with at most two decimals (e.g. 19.99).
    #[arg(long)]
    amount: String,
    /// The product description.
    #[arg(long)]
    body: String,
    /// The paying phone's IPv4 address.
    #[arg(long)]
    client_ip: String,
    /// Data echoed back in the payment notification.
    #[arg(long)]
    attach: Option<String>,
    /// Minutes the order stays payable (5 to 10080; default 20).
    #[arg(long)]
    expire_minutes: Option<u32>,
    #[command(flatten)]
    gateway: GatewayArgs,
}

/// Which gateway and merchant a command talks to.
#[derive(Args)]
struct GatewayArgs {
    /// The merchant configuration (JSON). Without it, an embedded sandbox is used.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides the config's api_base (e.g. a `wxpay sandbox` elsewhere).
    #[arg(long)]
    api_base: Option<String>,
    /// The API generation when no --config names one (embedded sandbox, or
    /// --api-base alone).
    #[arg(long, value_enum, default_value_t = ApiArg::Legacy)]
    api: ApiArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum ApiArg {
    /// The 2014 APP flow (access_token, package, genprepay).
    Legacy,
    /// API v2 (signed XML).
    V2,
    /// API v3 (RSA-signed JSON).
    V3,
}

impl From<ApiArg> for Api {
    fn from(arg: ApiArg) -> Api {
        match arg {
            ApiArg::Legacy => Api::Legacy,
            ApiArg::V2 => Api::V2,
            ApiArg::V3 => Api::V3,
        }
    }
}

#[derive(Args)]
struct LoadArgs {
    /// How many orders to run.
    #[arg(long, default_value_t = 1000)]
    orders: u32,
    /// How many threads share the one client.
    #[arg(long, default_value_t = 8)]
    threads: u32,
    /// The amount of each order, in yuan.
    #[arg(long, default_value = "0.01")]
    amount: String,
    /// The out_trade_no prefix (default: random), followed by the order's index.
    #[arg(long)]
    prefix: Option<String>,
    #[command(flatten)]
    gateway: GatewayArgs,
}

#[derive(Args)]
struct SandboxArgs {
    /// The port to listen on (0 picks a free one).
    #[arg(long, default_value_t = DEFAULT_SANDBOX_PORT)]
    port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// The merchant account to serve (the same JSON as a client config).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct SignArgs {
    /// The signature scheme.
    scheme: SchemeArg,
    /// The key: the partner key for legacy-package, the app key for legacy-sha1.
    #[arg(long, conflicts_with = "key_env", required_unless_present = "key_env")]
    key: Option<String>,
    /// Read the key from this environment variable instead (keeps it out of `ps`).
    #[arg(long)]
    key_env: Option<String>,
    /// Also print the canonical string that was hashed, with the key masked.
    #[arg(long)]
    explain: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum SchemeArg {
    /// MD5 of the order package, keyed with the partner key (upper-case hex).
    LegacyPackage,
    /// SHA1 of app_signature / the app's sign, keyed with the app key (lower-case hex).
    LegacySha1,
    /// API v2 MD5, keyed with the API key (upper-case hex).
    V2Md5,
    /// API v2 HMAC-SHA256, keyed with the API key (upper-case hex).
    V2HmacSha256,
}

impl From<SchemeArg> for Scheme {
    fn from(arg: SchemeArg) -> Scheme {
        match arg {
            SchemeArg::LegacyPackage => Scheme::LegacyPackage,
            SchemeArg::LegacySha1 => Scheme::LegacySha1,
            SchemeArg::V2Md5 => Scheme::V2Md5,
            SchemeArg::V2HmacSha256 => Scheme::V2HmacSha256,
        }
    }
}

fn main() -> ExitCode {
    wxpay::util::logging::init_from_env();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pay(args) => pay(args),
        Command::Sandbox(args) => sandbox(args),
        Command::Sign(args) => sign_stdin(args),
        Command::Load(args) => load(args),
        Command::Query(args) => query(args, false),
        Command::RefundQuery(args) => query(args, true),
        Command::Close(args) => close(args),
        Command::Refund(args) => refund(args),
        Command::Notify(NotifyCommand::Verify(args)) => notify_verify(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("wxpay: {message}");
            ExitCode::FAILURE
        }
    }
}

fn pay(args: PayArgs) -> Result<(), String> {
    let total_fee = Fen::from_yuan_str(&args.amount).map_err(|e| format!("--amount {e}"))?;
    let mut order =
        Order::new(&args.out_trade_no, total_fee, &args.body, &args.client_ip).map_err(describe)?;
    if let Some(attach) = &args.attach {
        order = order.with_attach(attach).map_err(describe)?;
    }
    if let Some(minutes) = args.expire_minutes {
        order = order.with_expire_minutes(minutes).map_err(describe)?;
    }

    let (config, _embedded) = args.gateway.resolve()?;
    let client = Client::new(config).map_err(describe)?;
    let params = client.build_pay_params(&order).map_err(describe)?;
    let json = serde_json::to_string_pretty(&params).map_err(|e| e.to_string())?;
    println!("{json}");
    Ok(())
}

impl GatewayArgs {
    /// The client configuration, and the embedded sandbox to keep alive when
    /// no configuration was given.
    fn resolve(&self) -> Result<(Config, Option<Sandbox>), String> {
        let (mut config, embedded) = match &self.config {
            Some(path) => (
                Config::from_json(&read_file(path)?).map_err(describe)?,
                None,
            ),
            // A sandbox elsewhere (`wxpay sandbox`) with the default account.
            None if self.api_base.is_some() => {
                let json = SandboxConfig::default().client_config_json_for(
                    self.api_base.as_deref().unwrap_or_default(),
                    self.api.into(),
                );
                (
                    Config::from_json(&json.to_string()).map_err(describe)?,
                    None,
                )
            }
            None => {
                let sandbox = Sandbox::start(SandboxConfig::default())
                    .map_err(|e| format!("cannot start the embedded sandbox: {e}"))?;
                eprintln!(
                    "wxpay: no --config given: running against an embedded sandbox at {}",
                    sandbox.base_url()
                );
                let config = match self.api {
                    ApiArg::Legacy => sandbox.client_config(),
                    ApiArg::V2 => sandbox.client_config_v2(),
                    ApiArg::V3 => sandbox.client_config_v3(),
                };
                (config, Some(sandbox))
            }
        };
        if let Some(api_base) = &self.api_base {
            config.api_base = Some(api_base.clone());
        }
        Ok((config, embedded))
    }
}

fn load(args: LoadArgs) -> Result<(), String> {
    let amount = Fen::from_yuan_str(&args.amount).map_err(|e| format!("--amount {e}"))?;
    let threads = args.threads.clamp(1, 256);
    let prefix = args
        .prefix
        .clone()
        .unwrap_or_else(|| format!("L{}", &RandomNonce.nonce()[..8]));
    let (config, _embedded) = args.gateway.resolve()?;
    let client = Client::new(config).map_err(describe)?;
    let next = AtomicU32::new(0);
    let started = Instant::now();
    let outcomes: Vec<(Duration, Result<(), Error>)> = thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= args.orders {
                            break mine;
                        }
                        let t = Instant::now();
                        let result =
                            Order::new(&format!("{prefix}{i}"), amount, "wxpay load", "127.0.0.1")
                                .and_then(|order| client.build_pay_params(&order))
                                .map(|_| ());
                        mine.push((t.elapsed(), result));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    let elapsed = started.elapsed();
    let mut latencies: Vec<u128> = outcomes.iter().map(|(d, _)| d.as_micros()).collect();
    latencies.sort_unstable();
    let percentile = |p: usize| -> u128 {
        if latencies.is_empty() {
            0
        } else {
            latencies[(latencies.len() * p / 100).min(latencies.len() - 1)]
        }
    };
    let mut errors: BTreeMap<String, u32> = BTreeMap::new();
    for (_, result) in &outcomes {
        if let Err(e) = result {
            let key = match e.errcode() {
                Some(code) => format!("{}:{code}", e.kind()),
                None => e.kind().to_string(),
            };
            *errors.entry(key).or_default() += 1;
        }
    }
    let ok = outcomes.iter().filter(|(_, r)| r.is_ok()).count();
    let elapsed_us = elapsed.as_micros().max(1);
    let summary = serde_json::json!({
        "orders": outcomes.len(),
        "ok": ok,
        "failed": outcomes.len() - ok,
        "errors": errors,
        "threads": threads,
        "elapsed_ms": elapsed.as_millis(),
        "orders_per_sec": outcomes.len() as u128 * 1_000_000 / elapsed_us,
        "latency_us": { "p50": percentile(50), "p99": percentile(99), "max": latencies.last().copied().unwrap_or(0) },
    });
    println!("{summary}");
    if ok == outcomes.len() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} orders failed",
            outcomes.len() - ok,
            outcomes.len()
        ))
    }
}

fn query(args: QueryArgs, refunds: bool) -> Result<(), String> {
    let order = match (args.out_trade_no, args.transaction_id) {
        (Some(no), _) => OrderRef::OutTradeNo(no),
        (None, Some(id)) => OrderRef::TransactionId(id),
        (None, None) => return Err("give --out-trade-no or --transaction-id".into()),
    };
    let (config, _embedded) = args.gateway.resolve()?;
    let client = Client::new(config).map_err(describe)?;
    let json = if refunds {
        serde_json::to_string_pretty(&client.query_refunds(&order).map_err(describe)?)
    } else {
        serde_json::to_string_pretty(&client.query_order(&order).map_err(describe)?)
    };
    println!("{}", json.map_err(|e| e.to_string())?);
    Ok(())
}

fn close(args: CloseArgs) -> Result<(), String> {
    let (config, _embedded) = args.gateway.resolve()?;
    Client::new(config)
        .and_then(|client| client.close_order(&args.out_trade_no))
        .map_err(describe)?;
    println!(
        "{}",
        serde_json::json!({ "out_trade_no": args.out_trade_no, "closed": true })
    );
    Ok(())
}

fn refund(args: RefundArgs) -> Result<(), String> {
    let total = Fen::from_yuan_str(&args.total).map_err(|e| format!("--total {e}"))?;
    let part = Fen::from_yuan_str(&args.refund).map_err(|e| format!("--refund {e}"))?;
    let request = RefundRequest {
        order: OrderRef::OutTradeNo(args.out_trade_no),
        out_refund_no: args.out_refund_no,
        total_fee: total.get(),
        refund_fee: part.get(),
        refund_desc: args.desc,
    };
    let (config, _embedded) = args.gateway.resolve()?;
    let receipt = Client::new(config)
        .and_then(|client| client.refund(&request))
        .map_err(describe)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&receipt).map_err(|e| e.to_string())?
    );
    Ok(())
}

fn notify_verify(args: NotifyVerifyArgs) -> Result<(), String> {
    let config = Config::from_json(&read_file(&args.config)?).map_err(describe)?;
    let client = Client::new(config).map_err(describe)?;
    let expected = args
        .expect_fee
        .map(|fen| Fen::new(fen).map_err(|e| format!("--expect-fee {e}")))
        .transpose()?;
    let mut body = Vec::new();
    io::stdin()
        .read_to_end(&mut body)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    // A query string copied from a log may end with a newline.
    let trimmed = body.trim_ascii();
    let headers: Vec<(String, String)> = args
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| format!("--header {h:?} is not `Name: value`"))
        })
        .collect::<Result<_, _>>()?;
    let verified = if client.config().api == Api::V3 {
        client
            .verify_signed_notification(&headers, trimmed, expected)
            .map(|n| serde_json::to_value(n).unwrap_or_default())
    } else if args.refund {
        client
            .verify_refund_notification(trimmed, expected)
            .map(|n| serde_json::to_value(n).unwrap_or_default())
    } else {
        client
            .verify_payment_notification(trimmed, expected)
            .map(|n| serde_json::to_value(n).unwrap_or_default())
    };
    match verified {
        Ok(notification) => {
            let out = serde_json::json!({
                "verified": true,
                "notification": notification,
                "reply": client.notification_success_reply(),
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
            );
            Ok(())
        }
        Err(e) => Err(format!("rejected: {e}")),
    }
}

fn sandbox(args: SandboxArgs) -> Result<(), String> {
    let config = match &args.config {
        Some(path) => SandboxConfig::from_json(&read_file(path)?).map_err(describe)?,
        None => SandboxConfig::default(),
    };
    let sandbox = Sandbox::bind(config, SocketAddr::new(args.host, args.port))
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.host, args.port))?;
    // The first line of standard output is the address, for scripts.
    let mut out = io::stdout().lock();
    writeln!(out, "{}", sandbox.base_url()).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    drop(out);
    eprintln!(
        "wxpay sandbox: appid {}, 2014 partner {}, v2 mch_id {}; client configs at {base}/sandbox/config and {base}/sandbox/config?api=v2; Ctrl-C stops",
        sandbox.client_config().appid,
        sandbox.client_config().partner_id.unwrap_or_default(),
        sandbox.client_config_v2().mch_id.unwrap_or_default(),
        base = sandbox.base_url()
    );
    sandbox.join();
    Ok(())
}

fn sign_stdin(args: SignArgs) -> Result<(), String> {
    let key = match (&args.key, &args.key_env) {
        (Some(key), _) => Secret::new(key.as_str()),
        (None, Some(var)) => Secret::new(
            std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?,
        ),
        (None, None) => return Err("give --key or --key-env".into()),
    };
    let mut input = String::new();
    io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    let fields = fields_from_json(&input).map_err(describe)?;
    let signed = sign(args.scheme.into(), &key, &fields).map_err(describe)?;
    if args.explain {
        println!("canonical string: {}", signed.masked());
    }
    println!("{}", signed.signature());
    Ok(())
}

fn read_file(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The error as one line, with the gateway's code when there is one.
fn describe(err: Error) -> String {
    format!("{} ({})", err, err.kind())
}
