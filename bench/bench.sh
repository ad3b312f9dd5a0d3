#!/usr/bin/env bash
# loopguard's benchmarks (docs/benchmarks.md); `make bench` runs this.
#
#   1. the Go benchmarks of the rules, the policy index and the webhook
#      (-count 5 -benchmem) into go-bench.txt;
#   2. their summary by benchstat (pinned below, run from the Go module
#      proxy; skipped with a note when it cannot be fetched) into
#      benchstat.txt, including the 10 vs 10,000 policies comparison;
#   3. the HTTPS load generator (bench/loadgen, self-contained: it starts the
#      webhook on 127.0.0.1) at concurrency 1, 8 and 32 into loadgen.txt
#      and loadgen.jsonl;
#   4. through a real API server, on a node-less dev control plane of its
#      own (DEV_DIR=.dev-bench, ports +200, so a running `make dev` is left
#      alone), brought up and down here: bench/apibench (none vs loopguard
#      vs a ValidatingAdmissionPolicy) into apibench.txt, and
#      bench/scalebench (1,000 policies, 10,000 pods: convergence, writes in
#      a quiet minute, the manager's RSS) into scalebench.txt;
#
# all in $BENCH_OUT (default bin/bench/<UTC time>, ignored by git) with
# machine.txt (CPU, cores, Go, load). The webhook package's TestMain starts
# a control plane (bin/k8s/current, `make k8s`) even for benchmarks.
#
# Knobs (environment):
#   BENCH_OUT        output directory
#   BENCH_COUNT      -count of the Go benchmarks (5)
#   BENCH_TIME       -benchtime (1s; e.g. 2000x for a quick run)
#   BENCH_FILTER     -bench regexp (.)
#   BENCH_PKGS       packages (./internal/rules/ ./internal/policyindex/ ./webhooks/)
#   LOADGEN_DURATION measured seconds per load run (10s, at most 60s)
#   LOADGEN_CONCURRENCY  concurrencies (1 8 32)
#   LOADGEN_ARGS     more loadgen flags, e.g. "--policies 10000 --placement one-namespace"
#   SKIP_GO_BENCH=1, SKIP_LOADGEN=1, SKIP_CLUSTER=1
#   BENCH_DOCS       where the raw outputs are copied at the end, as
#                    <UTC date>-<name>.txt, for docs/benchmarks.md to cite
#                    (docs/bench; empty: not copied)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BENCHSTAT_VERSION=v0.0.0-20260908200009-22c9c6c9d4da # golang.org/x/perf
GO=${GO:-go}
OUT=${BENCH_OUT:-bin/bench/$(date -u +%Y%m%dT%H%M%SZ)}
COUNT=${BENCH_COUNT:-5}
BENCHTIME=${BENCH_TIME:-1s}
FILTER=${BENCH_FILTER:-.}
read -r -a PKGS <<<"${BENCH_PKGS:-./internal/rules/ ./internal/policyindex/ ./webhooks/}"
LOADGEN_DURATION=${LOADGEN_DURATION:-10s}
read -r -a CONCURRENCY <<<"${LOADGEN_CONCURRENCY:-1 8 32}"
read -r -a LOADGEN_EXTRA <<<"${LOADGEN_ARGS:-}"

mkdir -p "$OUT"
status=0

# bench_tool builds a tool of the bench module (this directory, a Go module
# of its own) into $OUT; it runs from the repository root.
bench_tool() {
	local out=$OUT
	[[ $out == /* ]] || out=$PWD/$out
	$GO -C bench build -o "$out/$1" "./$1"
}

{
	echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "host:     $(uname -srm)"
	echo "cpus:     $(nproc)"
	echo "cpu:      $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "go:       $($GO version)"
	echo "commit:   $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
	echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at start"
} | tee "$OUT/machine.txt"

if [[ ${SKIP_GO_BENCH:-} != 1 ]]; then
	if [[ " ${PKGS[*]} " == *" ./webhooks/ "* && ! -x bin/k8s/current/kube-apiserver && -z ${KUBEBUILDER_ASSETS:-} ]]; then
		echo "bench: ./webhooks/ needs the control plane binaries (its TestMain starts one): run 'make k8s'" >&2
		exit 1
	fi
	echo "== go test -bench '$FILTER' -benchmem -count $COUNT -benchtime $BENCHTIME ${PKGS[*]}"
	# -run '^$': benchmarks only. The webhooks package's control plane
	# still starts (TestMain), idle while they run.
	if ! $GO test -run '^$' -bench "$FILTER" -benchmem -count "$COUNT" -benchtime "$BENCHTIME" -timeout 60m "${PKGS[@]}" | tee "$OUT/go-bench.txt"; then
		echo "bench: go test failed" >&2
		status=1
	fi

	benchstat=("$GO" run "golang.org/x/perf/cmd/benchstat@$BENCHSTAT_VERSION")
	if "${benchstat[@]}" -h >/dev/null 2>&1; then
		# 5 runs are too few for a 95% interval of the median (benchstat
		# prints ± ∞); with 90% it is about the min..max of the runs.
		bs() { (cd "$OUT" && "${benchstat[@]}" -confidence 0.9 "$@"); }
		{
			echo "# All benchmarks (median ± 90% confidence interval over $COUNT runs)"
			bs go-bench.txt
			echo
			echo "# 10,000 policies against 10 (the ratio is the result: the machine may be shared)"
			# Without one-namespace-all-select, where every policy selects the
			# reviewed pod: its cost grows with the policies that apply, by
			# design (docs/benchmarks.md, "Many policies selecting one pod").
			bs -filter '/policies:(10 OR 10000) -.fullname:/all-select/' -col /policies go-bench.txt
		} >"$OUT/benchstat.txt" 2>&1 || echo "bench: benchstat failed, see $OUT/benchstat.txt" >&2
		echo "== benchstat: $OUT/benchstat.txt"
	else
		echo "bench: benchstat@$BENCHSTAT_VERSION is not available (offline?); raw results in $OUT/go-bench.txt" | tee "$OUT/benchstat.txt" >&2
	fi
fi

if [[ ${SKIP_LOADGEN:-} != 1 ]]; then
	bench_tool loadgen
	for c in "${CONCURRENCY[@]}"; do
		echo "== loadgen --concurrency $c --duration $LOADGEN_DURATION ${LOADGEN_EXTRA[*]}"
		if ! "$OUT/loadgen" --concurrency "$c" --duration "$LOADGEN_DURATION" --label "concurrency $c" \
			--json-file "$OUT/loadgen.jsonl" "${LOADGEN_EXTRA[@]}" | tee -a "$OUT/loadgen.txt"; then
			echo "bench: loadgen at concurrency $c failed" >&2
			status=1
		fi
		echo | tee -a "$OUT/loadgen.txt"
	done
fi

if [[ ${SKIP_CLUSTER:-} != 1 ]]; then
	bench_dev() { DEV_DIR=.dev-bench DEV_PORT_OFFSET=200 DEV_NODE=0 hack/dev.sh "$@"; }
	trap 'bench_dev down >/dev/null 2>&1 || true' EXIT
	echo "== hack/dev.sh up (DEV_DIR=.dev-bench, node-less): $OUT/dev-up.txt"
	if bench_dev up >"$OUT/dev-up.txt" 2>&1; then
		echo "== apibench -n 300 -rounds 3"
		if ! { bench_tool apibench && "$OUT/apibench" -kubeconfig .dev-bench/kubeconfig -n 300 -rounds 3; } | tee "$OUT/apibench.txt"; then
			echo "bench: apibench failed" >&2
			status=1
		fi
		echo "== scalebench (about 3 minutes)"
		if ! { bench_tool scalebench && "$OUT/scalebench" -kubeconfig .dev-bench/kubeconfig -manager-pid-file .dev-bench/run/manager.pid; } | tee "$OUT/scalebench.txt"; then
			echo "bench: scalebench failed" >&2
			status=1
		fi
	else
		echo "bench: the bench control plane did not come up, see $OUT/dev-up.txt" >&2
		status=1
	fi
	bench_dev down >"$OUT/dev-down.txt" 2>&1 || echo "bench: hack/dev.sh down failed, see $OUT/dev-down.txt" >&2
	trap - EXIT
fi

echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
echo "results in $OUT"
# The raw output behind each table of docs/benchmarks.md, to be committed
# with the figures taken from it.
DOCS=${BENCH_DOCS-docs/bench}
if [[ -n $DOCS ]]; then
	mkdir -p "$DOCS"
	day=$(date -u +%Y-%m-%d)
	for f in machine go-bench benchstat loadgen apibench scalebench; do
		[[ -s $OUT/$f.txt ]] && cp "$OUT/$f.txt" "$DOCS/$day-$f.txt"
	done
	echo "raw outputs copied to $DOCS/$day-*.txt"
fi
exit $status
