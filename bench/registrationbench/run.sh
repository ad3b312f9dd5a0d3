#!/usr/bin/env bash
# make bench-registration: start bench/emptywebhook beside the dev cluster's
# manager (same certificate, same client authentication, on the port
# hack/dev.sh gives the API server credentials for) and run the benchmark.
# Needs `hack/dev.sh up` (DEV_NODE=0 is enough); DEV_PORT_OFFSET as for it.
set -euo pipefail
cd "$(dirname "$0")/../.."
off=${DEV_PORT_OFFSET:-0}
webhook_port=$((9443 + off)) empty_port=$((9443 + off + 7)) metrics_port=$((8443 + off))
pki=.dev/pki/webhook
go -C bench build -o "$PWD/bin/emptywebhook" ./emptywebhook
go -C bench build -o "$PWD/bin/registrationbench" ./registrationbench
auth=()
[[ -f $pki/client-ca.crt && ${DEV_WEBHOOK_AUTH:-1} == 1 ]] &&
  auth=(--webhook-client-ca="$pki/client-ca.crt" --webhook-client-names=kube-apiserver-webhook-client)
bin/emptywebhook --port="$empty_port" --metrics-port=$((empty_port + 1)) --cert-dir="$pki" "${auth[@]}" 2>.dev/logs/emptywebhook.log &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (echo >/dev/tcp/127.0.0.1/$empty_port) 2>/dev/null && break
  sleep 0.1
done
echo "loopguard's webhook on :$webhook_port, the empty webhook on :$empty_port" >&2
bin/registrationbench -kubeconfig .dev/kubeconfig -empty-url "https://127.0.0.1:$empty_port/validate-empty" \
  -metrics "https://127.0.0.1:$metrics_port/metrics" -empty-metrics "http://127.0.0.1:$((empty_port + 1))/metrics" "$@"
