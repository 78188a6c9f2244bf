#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian machine with the Rust toolchain:
#   1. installs what the tests need: from apt, PostgreSQL and the overlay tests' network tools
#      (iproute2, iperf3, tcpdump, ping, nftables), kubectl (the provider's tests drive the
#      test API server with it; Debian's kubernetes-client when none is installed); from PyPI, the stock python-iotronicclient
#      0.4.7 and iotronic-lightningrod 0.5.0, each in a CPython 3.8 venv,
#   2. starts a throw-away PostgreSQL on loopback,
#   3. checks formatting and lints, then runs the whole suite (cargo nextest when available).
# Every test that needs PostgreSQL or the stock client is required here: none is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== PostgreSQL"
PG_URL=$(scripts/postgres.sh start)
trap 'scripts/postgres.sh stop' EXIT
echo "$PG_URL"

echo "== network tools for the overlay tests (iproute2, iperf3, tcpdump, ping, nftables), kubectl"
missing=()
for pair in ip:iproute2 iperf3:iperf3 tcpdump:tcpdump ping:iputils-ping nft:nftables kubectl:kubernetes-client; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

echo "== stock python-iotronicclient 0.4.7"
IOTRONIC_CLI=$(tests/peers/setup-client.sh)
echo "$IOTRONIC_CLI"

echo "== stock iotronic-lightningrod 0.5.0"
LR_PYTHON=$(tests/peers/setup-lr.sh)
echo "$LR_PYTHON"

export S4T_TEST_POSTGRES_URL=$PG_URL S4T_REQUIRE_POSTGRES=1
export S4T_IOTRONIC_CLI=$IOTRONIC_CLI S4T_LR_PYTHON=$LR_PYTHON S4T_REQUIRE_PEERS=1

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --workspace --doc --locked
else
  cargo test --workspace --locked --no-fail-fast
fi
