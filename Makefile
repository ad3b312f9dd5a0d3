# loopguard: see README.md. The two commands a new user needs are
# `make dev` (run loopguard on a real local control plane) and `make test`.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
GO ?= go
# Binaries of the local control plane, built from the Go module proxy.
K8S_BIN := $(CURDIR)/bin/k8s/current
export KUBEBUILDER_ASSETS ?= $(K8S_BIN)

# The go test suites of make test (module, tags, packages, -run/-skip), one
# place for the Makefile and for hack/testcheck, which fails make test when a
# test is run by none of them. $(call go-test,<suite>,<flags>) runs one.
include hack/tests.mk
go-test = $(GO) -C $(TS_$(1)_DIR) test $(if $(TS_$(1)_TAGS),-tags $(TS_$(1)_TAGS)) $(if $(TS_$(1)_RUN),-run '$(TS_$(1)_RUN)') $(if $(TS_$(1)_SKIP),-skip '$(TS_$(1)_SKIP)') $(2) $(TS_$(1)_PKGS)

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate CRDs, RBAC and the webhook configuration from the code's markers.
	$(GO) tool controller-gen rbac:roleName=manager-role crd webhook paths="./..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: ## Generate DeepCopy methods.
	$(GO) tool controller-gen object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## go fmt.
	$(GO) fmt ./...

# GOLANGCI_LINT, when set (or on PATH), runs too; it is not a dependency of
# the module, so the default lint works offline.
GOLANGCI_LINT ?= $(shell command -v golangci-lint 2>/dev/null)

.PHONY: lint
lint: vet ## gofmt (no file may differ), go vet, and golangci-lint when installed (GOLANGCI_LINT).
	@# api/ is left out: gofmt's doc-comment rewriting turns the '' of a CEL
	@# marker into a typographic quote (api/v1alpha1/common_types.go).
	@out=$$(gofmt -l $$(git ls-files '*.go' ':!api/')); if [ -n "$$out" ]; then echo "gofmt -l:"; echo "$$out"; exit 1; fi
	@if [ -n "$(GOLANGCI_LINT)" ]; then $(GOLANGCI_LINT) run ./...; else echo "golangci-lint not installed: gofmt and go vet only"; fi

.PHONY: vet
vet: ## go vet, including the e2e and node tests (build tags).
	$(GO) vet ./...
	$(GO) vet -tags e2e,node,incluster,helm,ha,release,quickstart ./test/...

.PHONY: verify-generated
verify-generated: manifests generate ## Fail when generated files are not committed.
	@if [ -n "$$(git status --porcelain -- api config)" ]; then \
	  echo "generated files are out of date; run 'make manifests generate' and commit:"; \
	  git status --porcelain -- api config; git --no-pager diff -- api config | head -50; exit 1; fi

.PHONY: k8s
k8s: ## Build etcd, kube-apiserver, kube-controller-manager and kubectl into bin/k8s (cached).
	hack/build-k8s.sh

##@ Build

.PHONY: build
build: ## Build the manager, the loopguard CLI and its kubectl plugin into bin/.
	$(GO) build -o bin/manager ./cmd/manager
	$(GO) build -o bin/loopguard ./cmd/loopguard
	$(GO) build -o bin/kubectl-loopguard ./cmd/kubectl-loopguard

.PHONY: fuzz
fuzz: ## Run every fuzz target of the repository for FUZZTIME each (default 60s); their seed corpora run in make test.
	@targets="$$($(GO) run ./hack/testcheck -list-fuzz)"; [ -n "$$targets" ]; \
	while read -r dir tags pkg name; do \
	  echo "== $$pkg $$name for $${FUZZTIME:-60s}"; \
	  $(GO) -C $$dir test -tags "$${tags#-}" -run '^$$' -fuzz "^$$name\$$" -fuzztime $${FUZZTIME:-60s} $$pkg || exit 1; \
	done <<< "$$targets"

include hack/image.mk

HELM ?= bin/helm

$(HELM): hack/helm/tools/go.mod
	hack/helm/build-helm.sh $(HELM)

.PHONY: chart
chart: ## Regenerate the Helm chart dist/chart from config/ (kustomize).
	hack/helm/generate.sh

.PHONY: chart-check
chart-check: chart $(HELM) ## Fail when dist/chart is stale; lint it and check it renders what config/ does.
	@if [ -n "$$(git status --porcelain -- dist/chart)" ]; then \
	  echo "dist/chart is out of date; run 'make chart' and commit:"; \
	  git status --porcelain -- dist/chart; exit 1; fi
	$(HELM) lint --strict dist/chart
	HELM=$(abspath $(HELM)) $(call go-test,helm,-count=1)

##@ Release

# make release VERSION=vX.Y.Z writes dist/release (docs/release.md): the
# binaries' archives, the images (OCI archives, linux/amd64+arm64), their
# SBOMs, install.yaml, the packaged chart, the krew manifest, checksums.txt.
# Offline from a fresh clone: helm and cyclonedx-gomod are built from the
# module cache (their versions pinned in hack/helm/tools, hack/release/tools).
RELEASE_DIR ?= dist/release
REGISTRY ?= ghcr.io/loopguard
SBOM_TOOL ?= bin/cyclonedx-gomod

$(SBOM_TOOL): hack/release/tools/go.mod
	cd hack/release/tools && $(GO) build -o $(abspath $(SBOM_TOOL)) github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod

.PHONY: release
release: $(HELM) $(SBOM_TOOL) ## Build the release VERSION=vX.Y.Z into dist/release (REGISTRY names the images: ghcr.io/loopguard).
	@[[ "$(VERSION)" =~ ^v[0-9]+\.[0-9]+\.[0-9]+ ]] || { echo "usage: make release VERSION=vX.Y.Z"; exit 2; }
	cd hack/images && $(GO) build -o $(IMAGE_TOOL) .
	$(IMAGE_TOOL) release --repo . --version $(VERSION) --out $(RELEASE_DIR) --registry $(REGISTRY) --helm $(HELM) --sbom-tool $(SBOM_TOOL)
	cd $(RELEASE_DIR) && sha256sum -c --quiet checksums.txt && echo "$(RELEASE_DIR): $$(wc -l < checksums.txt) files, checksums verified"

.PHONY: test-release
test-release: $(HELM) ## make release (VERSION, default v0.0.0-test) and unpack and check every piece of it (test/release).
	$(MAKE) release VERSION=$(or $(VERSION),v0.0.0-test)
	RELEASE_DIR=$(abspath $(RELEASE_DIR)) HELM=$(abspath $(HELM)) $(call go-test,release,-count=1 -v)

# docs/quickstart.md on the dev cluster with its node (root): the images
# imported from the release's archives, install.yaml, then the chart.
.PHONY: test-quickstart
test-quickstart: k8s build $(HELM) ## Follow docs/quickstart.md on the dev node with the release in RELEASE_DIR (make release first).
	DEV_NODE=require hack/dev.sh up
	RELEASE_DIR=$(abspath $(RELEASE_DIR)) HELM=$(abspath $(HELM)) $(call go-test,quickstart,-count=1 -v -timeout 20m); rc=$$?; hack/dev.sh down; exit $$rc

##@ Deploy

# IMG is the manager image the install uses (repository:tag).
IMG ?= loopguard:latest
KUBECTL ?= kubectl

.PHONY: install
install: ## Install the CRDs into the cluster of the current kubeconfig (server-side apply).
	$(GO) tool kustomize build config/crd | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: ## Delete the CRDs from the cluster of the current kubeconfig: this DELETES EVERY POLICY AND REPORT.
	$(GO) tool kustomize build config/crd | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: run
run: ## Run the manager from this host against the cluster of the current kubeconfig (make install first; the API server must reach its webhook port 9443: make dev does all of it).
	POD_NAMESPACE=$${POD_NAMESPACE:-loopguard-system} $(GO) run ./cmd/manager $(RUN_ARGS)

.PHONY: build-installer
build-installer: ## Render the whole install (CRDs, RBAC, manager, webhook) into dist/install.yaml, with IMG.
	@mkdir -p dist
	@IMG=$(IMG) hack/render-install.sh > dist/install.yaml
	@echo "dist/install.yaml: $$(grep -c '^kind:' dist/install.yaml) objects, image $(IMG)"

.PHONY: deploy
deploy: ## Install loopguard into the cluster of the current kubeconfig (server-side apply), with IMG.
	IMG=$(IMG) hack/render-install.sh | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: ## Remove loopguard but keep the CRDs and every policy (see docs/upgrade.md).
	IMG=$(IMG) hack/render-install.sh --without-crds | $(KUBECTL) delete --ignore-not-found -f -

##@ Run

.PHONY: dev
dev: k8s build ## Run loopguard on a local control plane in the foreground (Ctrl-C stops all).
	hack/dev.sh run

.PHONY: dev-up
dev-up: k8s build ## Start the local control plane and loopguard in the background.
	hack/dev.sh up

.PHONY: dev-openreports
dev-openreports: ## Install the OpenReports CRDs into the dev cluster (hostNetwork ClusterReports appear then).
	bin/k8s/current/kubectl --kubeconfig .dev/kubeconfig apply --server-side -f "$$($(GO) list -m -f '{{.Dir}}' github.com/openreports/reports-api)/config/crd"

.PHONY: dev-down
dev-down: ## Stop everything dev-up started.
	hack/dev.sh down

##@ Test

.PHONY: test
test: check-tests verify-generated vet chart-check build-installer k8s build ## All tests: unit, integration (real kube-apiserver), e2e (kubectl) and real pods on the dev node.
	$(call go-test,unit,-count=1)
	cd hack/images && $(GO) vet ./...
	$(call go-test,images,-count=1)
	cd hack/enforcer && $(GO) vet ./...
	$(call go-test,enforcer,-count=1)
	cd bench && $(GO) vet ./...
	$(call go-test,bench,-count=1)
	cd bench/tools/kwok && $(GO) vet ./...
	$(call go-test,kwok,-count=1)
	cd hack/observe && $(GO) vet ./...
	$(call go-test,observe,-count=1)
	$(MAKE) test-release RELEASE_DIR=bin/release-test
	$(MAKE) test-e2e

.PHONY: check-tests
check-tests: ## Fail when a Test, Fuzz or Example function is run by no suite of make test (hack/tests.mk).
	$(GO) run ./hack/testcheck

.PHONY: test-unit
test-unit: ## Unit tests only (no control plane).
	$(GO) test -count=1 ./internal/... ./api/...

.PHONY: test-integration
test-integration: k8s ## Integration tests against a real kube-apiserver and etcd (envtest).
	$(GO) test -count=1 ./webhooks/... ./controllers/... ./test/integration/...

# The e2e and node tests share one dev cluster with a real node (root only:
# it installs containerd & co. when missing; without root it fails loudly).
.PHONY: test-e2e
test-e2e: k8s build $(HELM) ## End-to-end: make dev-up with a node, kubectl as a user would, real pods, and loopguard itself as a pod.
	DEV_NODE=require hack/dev.sh up
	rc=0; \
	$(call go-test,e2e,-count=1 -p 1 -v -timeout 30m) || rc=$$?; \
	$(call go-test,node,-count=1 -v -timeout 15m) || rc=$$?; \
	$(call go-test,netpol,-count=1 -v -timeout 15m) || rc=$$?; \
	HELM=$(abspath $(HELM)) $(call go-test,helm-cluster,-count=1 -v) || rc=$$?; \
	$(MAKE) image && $(call go-test,incluster,-count=1 -v -timeout 20m) || rc=$$?; \
	[ -f bin/release-test/checksums.txt ] || $(MAKE) release VERSION=v0.0.0-test RELEASE_DIR=bin/release-test; \
	RELEASE_DIR=$(abspath bin/release-test) HELM=$(abspath $(HELM)) $(call go-test,quickstart,-count=1 -v -timeout 20m) || rc=$$?; \
	REPLICAS=2 DEV_NODE=require hack/dev.sh up && \
	  REPLICAS=2 DEV_NODE=require $(call go-test,ha,-count=1 -v -timeout 15m) || rc=$$?; \
	hack/dev.sh down; exit $$rc

# Last in the e2e run: these tests kill managers and restart the API server.
.PHONY: test-ha
test-ha: k8s build ## HA and failure modes: two managers, leader hand-over, fail-closed, API server restart, graceful shutdown.
	REPLICAS=2 DEV_NODE=$${DEV_NODE:-0} hack/dev.sh up
	REPLICAS=2 DEV_NODE=$${DEV_NODE:-0} $(call go-test,ha,-count=1 -v -timeout 15m); rc=$$?; hack/dev.sh down; exit $$rc

.PHONY: test-node
test-node: k8s build ## Node tests alone: real pods on the dev cluster's node.
	DEV_NODE=require hack/dev.sh up
	$(call go-test,node,-count=1 -v -timeout 15m); rc=$$?; hack/dev.sh down; exit $$rc

include bench/bench.mk
