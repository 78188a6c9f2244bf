#!/usr/bin/env bash
# Memory of the WAMP router alone per idle session: a router in a child process, 2,000 idle
# WebSocket sessions opened from the parent, the child's RSS read from /proc before and after.
# Fails above 30 KiB per session (the budget of a cloud holding 100k boards).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release -q -p s4t-wamp --test memory -- --ignored --nocapture idle_sessions_fit_the_budget 2>&1 \
  | grep -Ei 'per session|bytes|KiB|test result'
