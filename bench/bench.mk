# The benchmark and comparison targets, included by the root Makefile. Their
# tools live in bench/, a Go module of its own (bench/go.mod): loopguard never
# depends on them. They are built into bin/ and run from the repository root.

##@ Benchmarks and comparison (not part of make test, which only vets and unit-tests bench/)

.PHONY: bench
bench: k8s ## Benchmarks, the HTTPS load test, and (on a control plane of its own) the API server and scale runs; figures go in docs/benchmarks.md (about 21 minutes).
	bench/bench.sh

.PHONY: bench-registration
bench-registration: ## Added latency of no webhook, an empty webhook, loopguard in a guarded and an unguarded namespace, and a VAP (needs make dev-up).
	bench/registrationbench/run.sh -n 300 -rounds 3 | tee docs/bench/$$(date -u +%Y-%m-%d)-registration.txt

.PHONY: bench-api
bench-api: ## Added latency through the dev API server: none vs loopguard vs a ValidatingAdmissionPolicy (needs make dev-up).
	$(GO) -C bench build -o $(CURDIR)/bin/apibench ./apibench
	bin/apibench -kubeconfig .dev/kubeconfig -n 300 -rounds 3

.PHONY: bench-scale
bench-scale: ## Controller at scale on the dev control plane: 1,000 policies, 10,000 pods (needs make dev-up; DEV_NODE=0 is enough).
	$(GO) -C bench build -o $(CURDIR)/bin/scalebench ./scalebench
	bin/scalebench

.PHONY: bench-agent-node
bench-agent-node: ## The node agent on a full node: the dev node at the kubelet default of 110 pods, discovery and protected scans, with the kernel's shared TCP table and with tcp_child_ehash_entries=1024 (brings make dev up with DEV_NODE_MAX_PODS=110; raw output in docs/bench/).
	DEV_NODE=require DEV_NODE_MAX_PODS=110 hack/dev.sh up
	bench/agentnode.sh | tee docs/bench/$$(date -u +%Y-%m-%d)-agent-node.txt
	EHASH=1024 bench/agentnode.sh | tee -a docs/bench/$$(date -u +%Y-%m-%d)-agent-node.txt

# The peers are built from the Go module proxy by their own tool modules
# (bench/peers/tools/*), never dependencies of loopguard; rebuilt only when a
# tool module changes. The comparison runs on a second, node-less control
# plane (.dev-compare, ports +100) so it never touches the main dev cluster.
PEERS_BIN := bin/peers
COMPARE_ENV := DEV_DIR=.dev-compare DEV_PORT_OFFSET=100

$(PEERS_BIN)/gatekeeper: bench/peers/tools/gatekeeper/go.mod bench/peers/tools/gatekeeper/go.sum
	cd bench/peers/tools/gatekeeper && nice $(GO) build -trimpath -o $(abspath $@) github.com/open-policy-agent/gatekeeper/v3

$(PEERS_BIN)/kyverno: bench/peers/tools/kyverno/go.mod bench/peers/tools/kyverno/go.sum
	cd bench/peers/tools/kyverno && nice $(GO) build -trimpath -o $(abspath $@) github.com/kyverno/kyverno/cmd/kyverno

.PHONY: peers
peers: $(PEERS_BIN)/gatekeeper $(PEERS_BIN)/kyverno ## Build Gatekeeper and Kyverno into bin/peers (about 5 minutes each on 2 cores, cached).

.PHONY: compare-harness
compare-harness:
	$(GO) -C bench build -o $(abspath $(PEERS_BIN))/compare ./peers/compare

.PHONY: compare
compare: k8s build peers compare-harness ## Run loopguard, Gatekeeper, Kyverno and a VAP side by side; rewrites docs/comparison.md (COMPARE_QUICK=1: smaller).
	$(COMPARE_ENV) hack/dev.sh up
	$(COMPARE_ENV) $(PEERS_BIN)/compare; rc=$$?; $(COMPARE_ENV) hack/dev.sh down; exit $$rc

.PHONY: compare-smoke
compare-smoke: k8s build peers compare-harness ## Load each peer's policy and check that each refuses one pod.
	$(COMPARE_ENV) hack/dev.sh up
	$(COMPARE_ENV) $(PEERS_BIN)/compare -smoke; rc=$$?; $(COMPARE_ENV) hack/dev.sh down; exit $$rc

# The Kubernetes scalability envelope (issue 18): 5,000 kwok nodes, 150,000
# pods, 10,000 LoopbackServices, 20 ClusterLoopbackServices, one
# NodeBindReport per node, on a node-less control plane of its own
# (.dev-scale, ports +200) that goes down afterwards. kwok is built from the
# Go module proxy by its tool module (bench/tools/kwok), rebuilt only when it
# changes. SCALE=small (50 nodes, 1,500 pods) validates the tool; SCALE_ARGS
# passes further flags (see bin/scalelarge -h). Run it on a quiet machine.
SCALE ?= large
SCALE_ARGS ?=
# SCALE_MANAGER_ARGS: more manager flags, e.g. --concurrent-reconciles=16.
SCALE_MANAGER_ARGS ?=
SCALE_PORT_OFFSET ?= 200
SCALE_PPROF = 127.0.0.1:$(shell echo $$((6065 + $(SCALE_PORT_OFFSET))))
# The manager's metrics (dev binds them to loopback) in plain HTTP, for the
# bench to count its reconciles by controller (its own cluster only).
SCALE_METRICS = 127.0.0.1:$(shell echo $$((8443 + $(SCALE_PORT_OFFSET))))
# The node grace period (50 s by default) is raised past kwok's slowed lease
# renewals (bench/scalelarge: every 150 s at 5,000 nodes), so that a node
# whose heartbeat the loaded machine delays is not marked NotReady.
SCALE_ENV = DEV_DIR=.dev-scale DEV_PORT_OFFSET=$(SCALE_PORT_OFFSET) DEV_NODE=0 DEV_ETCD_QUOTA_BYTES=8589934592 DEV_KCM_ARGS=--node-monitor-grace-period=20m MANAGER_ARGS="--pprof-bind-address=$(SCALE_PPROF) --metrics-secure=false $(SCALE_MANAGER_ARGS)"

bin/kwok: bench/tools/kwok/go.mod bench/tools/kwok/go.sum
	cd bench/tools/kwok && nice $(GO) build -trimpath -o $(abspath $@) sigs.k8s.io/kwok/cmd/kwok

bin/kwok-config: bench/tools/kwok/go.mod bench/tools/kwok/go.sum $(wildcard bench/tools/kwok/config/*.go)
	cd bench/tools/kwok && nice $(GO) build -trimpath -o $(abspath $@) ./config

.PHONY: bench-scale-large
bench-scale-large: k8s bin/kwok bin/kwok-config ## The scalability envelope: 5,000 kwok nodes, 150,000 pods (SCALE=small: 50 nodes, 1,500 pods); its own control plane; estimated 30 to 60 minutes on 2 quiet cores.
	@pid=$$(cat .dev-scale/run/etcd.pid 2>/dev/null); if [ -n "$$pid" ] && kill -0 "$$pid" 2>/dev/null; then \
	  echo "bench-scale-large: a run's control plane is up in .dev-scale (etcd pid $$pid): wait for it, or stop it with: $(SCALE_ENV) hack/dev.sh down" >&2; exit 1; fi
	$(GO) -C bench build -o $(CURDIR)/bin/scalelarge ./scalelarge
	$(SCALE_ENV) hack/dev.sh up
	$(SCALE_ENV) bin/scalelarge -scale $(SCALE) -dev-dir .dev-scale -manager-pprof $(SCALE_PPROF) -manager-metrics http://$(SCALE_METRICS)/metrics -cleanup=false $(SCALE_ARGS); rc=$$?; $(SCALE_ENV) hack/dev.sh down; exit $$rc
