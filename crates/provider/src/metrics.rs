//! The provider's counters, in the Prometheus text format (`s4t provider run
//! --metrics-addr`): reconciles per kind, calls to the sites per verb, reconciles put off by
//! the global budget, boards the status feed reported, and whether this replica leads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

static RECONCILES: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());
static SITE_REQUESTS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());
static OVER_BUDGET: AtomicU64 = AtomicU64::new(0);
static LEADING: AtomicU64 = AtomicU64::new(0);
static FEED_WAKEUPS: AtomicU64 = AtomicU64::new(0);

/// Whether this replica runs the controllers (it always does without leader election).
pub fn set_leading(leading: bool) {
    LEADING.store(leading as u64, Ordering::Relaxed);
}

pub(crate) fn reconcile(kind: &'static str) {
    *RECONCILES.lock().unwrap().entry(kind).or_insert(0) += 1;
}

pub(crate) fn site_request(verb: &'static str) {
    *SITE_REQUESTS.lock().unwrap().entry(verb).or_insert(0) += 1;
}

pub(crate) fn feed_wakeups(boards: usize) {
    FEED_WAKEUPS.fetch_add(boards as u64, Ordering::Relaxed);
}

pub(crate) fn over_budget() {
    OVER_BUDGET.fetch_add(1, Ordering::Relaxed);
}

/// Every counter so far.
pub fn render() -> String {
    let mut out = String::new();
    out.push_str("# HELP s4t_provider_reconciles_total Reconciles run, per kind.\n");
    out.push_str("# TYPE s4t_provider_reconciles_total counter\n");
    for (kind, n) in RECONCILES.lock().unwrap().iter() {
        out.push_str(&format!(
            "s4t_provider_reconciles_total{{kind=\"{kind}\"}} {n}\n"
        ));
    }
    out.push_str(
        "# HELP s4t_provider_site_requests_total REST calls to the S4T sites, per verb.\n",
    );
    out.push_str("# TYPE s4t_provider_site_requests_total counter\n");
    for (verb, n) in SITE_REQUESTS.lock().unwrap().iter() {
        out.push_str(&format!(
            "s4t_provider_site_requests_total{{verb=\"{verb}\"}} {n}\n"
        ));
    }
    out.push_str(
        "# HELP s4t_provider_over_budget_total Reconciles put off by --max-reconcile-rate.\n",
    );
    out.push_str("# TYPE s4t_provider_over_budget_total counter\n");
    out.push_str(&format!(
        "s4t_provider_over_budget_total {}\n",
        OVER_BUDGET.load(Ordering::Relaxed)
    ));
    out.push_str("# HELP s4t_provider_board_feed_wakeups_total Boards whose status change the board status feed reported.\n");
    out.push_str("# TYPE s4t_provider_board_feed_wakeups_total counter\n");
    out.push_str(&format!(
        "s4t_provider_board_feed_wakeups_total {}\n",
        FEED_WAKEUPS.load(Ordering::Relaxed)
    ));
    out.push_str("# HELP s4t_provider_leader 1 while this replica runs the controllers.\n");
    out.push_str("# TYPE s4t_provider_leader gauge\n");
    out.push_str(&format!(
        "s4t_provider_leader {}\n",
        LEADING.load(Ordering::Relaxed)
    ));
    out
}
