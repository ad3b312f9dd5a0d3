# Every `go test` run of `make test`, in one place. The Makefile runs each suite
# with $(call go-test,<suite>,<flags>); hack/testcheck reads this file and fails
# `make test` when a Test, Fuzz or Example function of the repository is run by
# none of the suites in TEST_SUITES (and `make fuzz` takes its targets from it).
# Only `NAME := value` lines and comments here: the checker parses them ($$ is $).
#
#   TS_<suite>_DIR   the module's directory     TS_<suite>_TAGS  build tags (comma-separated)
#   TS_<suite>_PKGS  the packages               TS_<suite>_RUN / TS_<suite>_SKIP  -run / -skip

TEST_SUITES := unit images enforcer bench kwok observe release helm e2e node netpol helm-cluster incluster quickstart ha

# Unit and integration tests (envtest) of the main module. test/corpus runs
# loopguard check over ../shared/corpus beside the repository (a worktree
# elsewhere sets LOOPGUARD_CORPUS=<dir>/shared/corpus); it fails without it.
TS_unit_DIR := .
TS_unit_PKGS := ./...

TS_images_DIR := hack/images
TS_images_PKGS := ./...

TS_enforcer_DIR := hack/enforcer
TS_enforcer_PKGS := ./...

# The benchmark and comparison tools' pure parts (a module of their own).
TS_bench_DIR := bench
TS_bench_PKGS := ./...

# bin/kwok-config's stages, rendered by kwok's own template renderer.
TS_kwok_DIR := bench/tools/kwok
TS_kwok_PKGS := ./...

# The dashboard's and alert rules' queries, parsed by Prometheus's parser.
TS_observe_DIR := hack/observe
TS_observe_PKGS := ./...

# make test-release: unpack the release built into RELEASE_DIR, check every piece.
TS_release_DIR := .
TS_release_TAGS := release
TS_release_PKGS := ./test/release/

# make chart-check: every helm test but the one that needs the dev cluster.
TS_helm_DIR := .
TS_helm_TAGS := helm
TS_helm_PKGS := ./test/helm/
TS_helm_SKIP := ^TestServerDryRun$$

# make test-e2e, on the dev cluster with a node.
TS_e2e_DIR := .
TS_e2e_TAGS := e2e
TS_e2e_PKGS := ./test/e2e/... ./test/redteam/...

TS_node_DIR := .
TS_node_TAGS := node
TS_node_PKGS := ./test/node/...

TS_netpol_DIR := .
TS_netpol_TAGS := node
TS_netpol_PKGS := ./test/netpol/...

TS_helm-cluster_DIR := .
TS_helm-cluster_TAGS := helm
TS_helm-cluster_PKGS := ./test/helm/
TS_helm-cluster_RUN := ^TestServerDryRun$$

TS_incluster_DIR := .
TS_incluster_TAGS := incluster
TS_incluster_PKGS := ./test/incluster/...

# docs/quickstart.md on the dev node, from the release's archives.
TS_quickstart_DIR := .
TS_quickstart_TAGS := quickstart
TS_quickstart_PKGS := ./test/quickstart/

# Last: these tests kill managers and restart the API server.
TS_ha_DIR := .
TS_ha_TAGS := ha
TS_ha_PKGS := ./test/ha/...
