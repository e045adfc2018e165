#!/usr/bin/env bash
# The REST API under load while runs execute: wrk (Debian's package) on loopback, bounded in time.
#
#   testkube-server/benches/api-load.sh [PATH/TO/testkube]   (default: a release build)
#
# Starts `testkube serve` (SQLite, local executor) with a fresh home, records SEED runs, starts
# BUSY long runs that print all along, then measures with wrk, each for DURATION:
#   1. GET /v1/test-workflow-executions?pageSize=20 (listing with totals), CONNECTIONS connections;
#   2. POST /v1/test-workflows/quick/executions (starting runs), 4 connections;
#   3. the listing again, over every execution the second part recorded.
# Prints wrk's latency distribution (p50, p99) and requests/s for both.
set -euo pipefail
cd "$(dirname "$0")/../.."
binary="${1:-}"
if [ -z "$binary" ]; then
  cargo build --release --locked -q -p testkube
  binary=target/release/testkube
fi
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
SEED="${SEED:-500}"
BUSY="${BUSY:-4}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-16}"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/workflows"
cat > "$work/workflows/quick.yaml" <<'YAML'
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: quick}
spec:
  steps:
  - shell: echo ok
YAML
cat > "$work/workflows/busy.yaml" <<'YAML'
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: busy}
spec:
  steps:
  - shell: 'for i in $(seq 1 600); do echo busy line $i; sleep 0.1; done'
YAML
TESTKUBE_SANDBOX=off TESTKUBE_HOME="$work/home" "$binary" serve --no-auth --listen 127.0.0.1:0 \
  --workflows "$work/workflows" 2> "$work/serve.log" &
server=$!
until grep -q serving "$work/serve.log"; do sleep 0.1; done
url="$(grep -o 'http://[0-9.:]*' "$work/serve.log" | head -1)"
echo "server: $url ($binary); seeding $SEED runs"
for _ in $(seq 1 "$SEED"); do
  curl -sf -X POST -H 'content-type: application/json' -d '{}' "$url/v1/test-workflows/quick/executions" > /dev/null
done
for _ in $(seq 1 "$BUSY"); do
  curl -sf -X POST -H 'content-type: application/json' -d '{}' "$url/v1/test-workflows/busy/executions" > /dev/null
done
sleep 1
echo "== list executions (pageSize=20, $CONNECTIONS connections, $DURATION, $BUSY runs printing)"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$url/v1/test-workflow-executions?pageSize=20" \
  | grep -E 'Requests/sec|^ +(50|99)%'
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
LUA
echo "== start runs (4 connections, $DURATION)"
wrk -t1 -c4 -d"$DURATION" --latency -s "$work/post.lua" "$url/v1/test-workflows/quick/executions" \
  | grep -E 'Requests/sec|^ +(50|99)%|Non-2xx'
total="$(curl -sf "$url/v1/test-workflow-executions?pageSize=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["results"])')"
echo "== list executions again, now that $total are recorded ($CONNECTIONS connections, $DURATION)"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$url/v1/test-workflow-executions?pageSize=20" \
  | grep -E 'Requests/sec|^ +(50|99)%'

