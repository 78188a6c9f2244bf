#!/usr/bin/env bash
# The provider at scale: BOARDS Boards applied at once to the test API server, reconciled by
# `s4t provider run` against `s4t cloud`, with an `s4t swarm` of BOARDS simulated boards.
# Prints the time until all are Ready, the provider's RSS and the steady-state call rates.
#   bench/provider.sh [BOARDS=10000] [MAX_RECONCILE_RATE=100] [STEADY_SECS=120] [MAX_RECONCILES_PER_SITE]
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || true
cargo build --release -q -p s4t
cargo bench -q -p s4t --bench provider -- "${1:-10000}" "${2:-100}" "${3:-120}" ${4:+"$4"}
