//! The provider at scale: N Boards applied at once to the **test API server** (the same one
//! the end-to-end tests use; see its gaps), reconciled by a real `s4t provider run` process
//! against a real `s4t cloud`, with an `s4t swarm` of N simulated boards registering behind
//! them. Measures the time until every Board is Ready, the provider's peak RSS, and the
//! steady-state calls per minute to the cloud and to Kubernetes.
//!
//! `cargo bench -p s4t --bench provider -- [BOARDS] [MAX_RECONCILE_RATE] [STEADY_SECS]
//! [MAX_RECONCILES_PER_SITE]` (defaults 10000 100 120 and the provider's own default);
//! `bench/provider.sh` builds and runs it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

#[path = "../tests/support/test_apiserver.rs"]
mod test_apiserver;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = root.join("target/release/s4t");
    assert!(
        bin.exists(),
        "{}: build it first (cargo build --release)",
        bin.display()
    );
    bin
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A counter of the provider's /metrics, summed over its labels.
async fn counter(http: &reqwest::Client, metrics: &str, name: &str) -> u64 {
    let text = http
        .get(metrics)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn ready(board: &Value) -> bool {
    board["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let boards: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let rate: u16 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let steady: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(120);
    let per_site: Option<u16> = args.get(3).and_then(|a| a.parse().ok());
    let bin = binary();
    let dir = std::env::temp_dir().join(format!("s4t-bench-provider-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // The cloud.
    let (api_port, wamp_port) = (free_port(), free_port());
    let mut cloud = Command::new(&bin)
        .args(["cloud", "--data-dir"])
        .arg(&dir)
        .args(["--api-addr", &format!("127.0.0.1:{api_port}")])
        .args(["--wamp-addr", &format!("127.0.0.1:{wamp_port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = cloud.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("REST API on") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let _cloud = Proc(cloud);
    let base = format!("http://127.0.0.1:{api_port}");
    let token = std::fs::read_to_string(dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_string();

    // The test API server, the site and its token.
    let (server, url) = test_apiserver::TestApiServer::start().await;
    let http = reqwest::Client::new();
    let post = |path: String, body: Value| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let r = http
                .post(format!("{url}{path}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
        }
    };
    use base64::Engine;
    post(
        "/api/v1/namespaces/crossplane-system/secrets".into(),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "site"},
               "data": {"token": base64::engine::general_purpose::STANDARD.encode(&token)}}),
    )
    .await;
    post(
        "/apis/iot.s4t.m.crossplane.io/v1alpha1/clusterproviderconfigs".into(),
        json!({"apiVersion": "iot.s4t.m.crossplane.io/v1alpha1", "kind": "ClusterProviderConfig",
               "metadata": {"name": "default"},
               "spec": {"endpoint": base, "credentials": {"source": "Secret",
                        "secretRef": {"namespace": "crossplane-system", "name": "site", "key": "token"}}}}),
    )
    .await;
    let kubeconfig = dir.join("kubeconfig");
    test_apiserver::TestApiServer::write_kubeconfig(&kubeconfig, &url, None);

    // The provider and the swarm.
    let metrics_port = free_port();
    // S4T_BENCH_PROVIDER_WRAP runs the provider under a profiler (e.g. `heaptrack`); the RSS
    // figures are then the wrapper's, not the provider's.
    // S4T_BENCH_PROVIDER_LOG names a file for the provider's log (its level from S4T_LOG).
    let provider_log = match std::env::var("S4T_BENCH_PROVIDER_LOG") {
        Ok(path) => Stdio::from(std::fs::File::create(path).expect("S4T_BENCH_PROVIDER_LOG")),
        Err(_) => Stdio::null(),
    };
    let wrap = std::env::var("S4T_BENCH_PROVIDER_WRAP").unwrap_or_default();
    let mut wrap = wrap.split_whitespace();
    let provider = match wrap.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(wrap).arg(&bin);
            c
        }
        None => Command::new(&bin),
    }
    .args(["provider", "run", "--poll", "1m"])
    .args(["--max-reconcile-rate", &rate.to_string()])
    .args(
        per_site
            .map(|n| vec!["--max-reconciles-per-site".to_string(), n.to_string()])
            .unwrap_or_default(),
    )
    .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
    .env("KUBECONFIG", &kubeconfig)
    .env("S4T_LOG", std::env::var("S4T_LOG").unwrap_or("warn".into()))
    .stdout(Stdio::null())
    .stderr(provider_log)
    .spawn()
    .unwrap();
    let provider_pid = provider.id();
    let _provider = Proc(provider);
    let metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
    let mut swarm = Command::new(&bin)
        .args(["swarm", "--cloud", &format!("ws://127.0.0.1:{wamp_port}/")])
        .args(["--boards", &boards.to_string(), "--code-prefix", "BENCH-"])
        .args(["--url", &base])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The swarm's last report (`N/M online`), for the progress lines.
    let swarm_says = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let said = swarm_says.clone();
    let swarm_out = BufReader::new(swarm.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in swarm_out.lines().map_while(Result::ok) {
            *said.lock().unwrap() = line;
        }
    });
    let _swarm = Proc(swarm);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = rss_kib(provider_pid);

    // N Boards at once.
    let start = Instant::now();
    futures_util::stream::iter(0..boards)
        .map(|i| {
            post(
                "/apis/iot.s4t.m.crossplane.io/v1alpha1/namespaces/bench/boards".into(),
                json!({"apiVersion": "iot.s4t.m.crossplane.io/v1alpha1", "kind": "Board",
                       "metadata": {"name": format!("b{i}"), "namespace": "bench"},
                       "spec": {"forProvider": {"code": format!("BENCH-{i}"),
                                "location": {"latitude": "38.19", "longitude": "15.55", "altitude": "0"}},
                                "providerConfigRef": {"kind": "ClusterProviderConfig", "name": "default"}}}),
            )
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
    let applied = start.elapsed();
    let mut peak_rss = idle_rss;
    let mut last_report = Instant::now();
    let mut progress = (0, Instant::now());
    let all_ready = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        peak_rss = peak_rss.max(rss_kib(provider_pid));
        let objects = server.objects("boards");
        let n = objects.iter().filter(|b| ready(b)).count();
        if n == boards {
            break start.elapsed();
        }
        if n != progress.0 {
            progress = (n, Instant::now());
        } else if progress.1.elapsed() > Duration::from_secs(300) {
            // Stuck: show what the provider says of a few of the Boards left.
            for b in objects.iter().filter(|b| !ready(b)).take(5) {
                eprintln!(
                    "not Ready: {} annotations {} status {}",
                    b["metadata"]["name"], b["metadata"]["annotations"], b["status"]
                );
            }
            panic!("no Board turned Ready for 300 s ({n}/{boards})");
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "{:>5.0} s: {n}/{boards} Ready; {} made; {} reconciles, {} woken by the feed; {}",
                start.elapsed().as_secs_f64(),
                counter(
                    &http,
                    &metrics,
                    "s4t_provider_site_requests_total{verb=\"POST\"}"
                )
                .await,
                counter(&http, &metrics, "s4t_provider_reconciles_total").await,
                counter(&http, &metrics, "s4t_provider_board_feed_wakeups_total").await,
                swarm_says.lock().unwrap()
            );
            last_report = Instant::now();
        }
        assert!(
            start.elapsed() < Duration::from_secs(1800),
            "not all Ready within 30 min ({n}/{boards})"
        );
    };
    let reconciles = counter(&http, &metrics, "s4t_provider_reconciles_total").await;

    // Steady state: every Board up to date, polled.
    let (site0, kube0) = (
        counter(&http, &metrics, "s4t_provider_site_requests_total").await,
        server.requests(),
    );
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(steady) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak_rss = peak_rss.max(rss_kib(provider_pid));
    }
    let minutes = t0.elapsed().as_secs_f64() / 60.0;
    let site = counter(&http, &metrics, "s4t_provider_site_requests_total").await - site0;
    let kube = server.requests() - kube0;
    let steady_rss = rss_kib(provider_pid);
    println!("boards                         {boards}");
    println!("--max-reconcile-rate           {rate}");
    println!(
        "--max-reconciles-per-site      {}",
        per_site.map_or("default".to_string(), |n| n.to_string())
    );
    println!(
        "applied (POSTs done)           {:.1} s",
        applied.as_secs_f64()
    );
    println!(
        "all Ready after                {:.1} s",
        all_ready.as_secs_f64()
    );
    println!("reconciles until all Ready     {reconciles}");
    println!(
        "provider RSS idle              {:.1} MiB",
        idle_rss as f64 / 1024.0
    );
    println!(
        "provider RSS peak              {:.1} MiB",
        peak_rss as f64 / 1024.0
    );
    println!(
        "provider RSS steady            {:.1} MiB",
        steady_rss as f64 / 1024.0
    );
    println!(
        "steady calls to the cloud      {:.0} /min (poll 1m)",
        site as f64 / minutes
    );
    println!(
        "steady calls to Kubernetes     {:.0} /min",
        kube as f64 / minutes
    );
    let _ = std::fs::remove_dir_all(&dir);
}
