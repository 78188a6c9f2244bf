//! `s4t provider`: the Crossplane provider's commands.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum ProviderCmd {
    /// Run the controllers of every kind against the cluster of the kubeconfig (KUBECONFIG,
    /// ~/.kube/config, or the in-cluster service account).
    Run {
        /// How often an up-to-date resource is observed again (Go duration: 30s, 1m, 1h).
        #[arg(long, default_value = "1m", value_parser = go_duration)]
        poll: std::time::Duration,
        /// Accepted for compatibility with Crossplane providers; the watch here never resyncs
        /// (the poll observes every resource instead).
        #[arg(long, short = 's', default_value = "1h", value_parser = go_duration)]
        sync: std::time::Duration,
        /// Reconciles a second across all kinds (bursts of ten times that), and at once per
        /// kind.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
        max_reconcile_rate: u16,
        /// Reconciles that talk to one site at once; the others wait for a slot (holding no
        /// connection), and a slow site does not take another site's slots.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1000))]
        max_reconciles_per_site: u16,
        /// Leader election between replicas on a coordination.k8s.io/v1 Lease: only the
        /// holder runs the controllers; a replica that loses the Lease exits (its pod restarts
        /// as a candidate). Off by default: run one replica.
        #[arg(long, short = 'l', env = "LEADER_ELECTION")]
        leader_election: bool,
        /// The Lease's namespace (the provider's own, in a pod).
        #[arg(long, env = "POD_NAMESPACE", default_value = "crossplane-system")]
        leader_election_namespace: String,
        /// The Lease's name.
        #[arg(long, default_value = "s4t-provider")]
        leader_election_id: String,
        /// How long a Lease not renewed stays its holder's (the holder renews every 2/15 of
        /// it and gives up after 2/3 of it without a renewal).
        #[arg(long, default_value = "15s", value_parser = go_duration)]
        leader_election_lease_duration: std::time::Duration,
        /// Debug logs.
        #[arg(long, short = 'd')]
        debug: bool,
        /// Serve Prometheus counters on http://ADDR/metrics (off by default).
        #[arg(long)]
        metrics_addr: Option<std::net::SocketAddr>,
    },
    /// Write the provider's CustomResourceDefinitions (generated from its Rust types), one YAML
    /// file per kind, into DIR; `--check` only compares and fails on any difference.
    Crds {
        #[arg(long, default_value = "package/crds")]
        dir: PathBuf,
        #[arg(long)]
        check: bool,
    },
}

fn go_duration(text: &str) -> Result<std::time::Duration, String> {
    s4t_provider::meta::parse_go_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?} is not a duration such as 30s, 1m or 1h30m"))
}

pub async fn run(cmd: ProviderCmd) -> anyhow::Result<()> {
    match cmd {
        ProviderCmd::Run {
            poll,
            sync: _,
            max_reconcile_rate,
            max_reconciles_per_site,
            leader_election,
            leader_election_namespace,
            leader_election_id,
            leader_election_lease_duration,
            debug,
            metrics_addr,
        } => {
            anyhow::ensure!(
                leader_election_lease_duration >= std::time::Duration::from_secs(2),
                "--leader-election-lease-duration must be at least 2s"
            );
            crate::serve::init_logging_with(if debug {
                "debug,hyper=info,kube_client=info"
            } else {
                "info"
            });
            let kube = s4t_provider::kube::Client::try_default()
                .await
                .context("cannot reach Kubernetes (KUBECONFIG, ~/.kube/config or in-cluster)")?;
            if let Some(addr) = metrics_addr {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("--metrics-addr {addr}"))?;
                let app = axum::Router::new().route(
                    "/metrics",
                    axum::routing::get(|| async { s4t_provider::metrics::render() }),
                );
                tokio::spawn(async move { axum::serve(listener, app).await });
                tracing::info!(%addr, "metrics on /metrics");
            }
            let config = s4t_provider::controller::RunConfig {
                poll,
                max_reconcile_rate,
                max_reconciles_per_site,
            };
            if !leader_election {
                s4t_provider::metrics::set_leading(true);
                tracing::info!(?poll, max_reconcile_rate, "provider running");
                s4t_provider::controller::run(kube, config).await;
                return Ok(());
            }
            let mut elector = s4t_provider::leader::Elector::new(
                kube.clone(),
                &leader_election_namespace,
                &leader_election_id,
                s4t_provider::leader::candidate_identity(),
                s4t_provider::leader::Timing::from_lease_duration(leader_election_lease_duration),
            );
            tracing::info!(identity = %elector.identity(), lease = %format!("{leader_election_namespace}/{leader_election_id}"), "candidate for leadership");
            tokio::select! {
                _ = elector.acquire() => {}
                _ = crate::serve::stop_signal() => return Ok(()),
            }
            s4t_provider::metrics::set_leading(true);
            tracing::info!(?poll, max_reconcile_rate, "provider running");
            tokio::select! {
                _ = s4t_provider::controller::run(kube, config) => Ok(()),
                lost = elector.hold() => {
                    s4t_provider::metrics::set_leading(false);
                    Err(anyhow::anyhow!(lost))
                }
                _ = crate::serve::stop_signal() => {
                    s4t_provider::metrics::set_leading(false);
                    elector.release().await;
                    Ok(())
                }
            }
        }
        ProviderCmd::Crds { dir, check } => {
            let files = s4t_provider::apis::crd_files();
            if check {
                let stale: Vec<String> = files
                    .iter()
                    .filter(|(name, text)| {
                        std::fs::read_to_string(dir.join(name)).ok().as_deref() != Some(text)
                    })
                    .map(|(name, _)| name.clone())
                    .collect();
                anyhow::ensure!(
                    stale.is_empty(),
                    "{} differ from the generated CRDs: run `s4t provider crds --dir {}`",
                    stale.join(", "),
                    dir.display()
                );
                return Ok(());
            }
            std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
            for (name, text) in &files {
                let file = dir.join(name);
                std::fs::write(&file, text).with_context(|| format!("{}", file.display()))?;
                println!("{}", file.display());
            }
            Ok(())
        }
    }
}
