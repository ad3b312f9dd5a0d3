# The manager's container image without a Docker daemon (hack/images, with
# go-containerregistry): one static binary (CGO_ENABLED=0, -trimpath) at
# /manager on an empty base, user 65532:65532, no shell, fixed timestamps
# (the same source gives the same image ID). Included by the Makefile.

IMAGE_TOOL := $(CURDIR)/bin/images-tool
IMAGE_TAR := dist/loopguard-manager.tar
# The dev node's containerd (hack/lib/node.sh); imported only when it runs.
DEV_CONTAINERD_SOCK := $(CURDIR)/.dev/node/containerd/containerd.sock

.PHONY: image
image: ## Build dist/loopguard-manager.tar (loopguard:dev, no Docker); import it into the dev node's containerd when it runs.
	cd hack/images && $(GO) build -o $(IMAGE_TOOL) .
	@if [ -S $(DEV_CONTAINERD_SOCK) ] && command -v ctr >/dev/null && timeout 5 ctr --address $(DEV_CONTAINERD_SOCK) version >/dev/null 2>&1; then \
	  echo "dev node's containerd is running: building and importing loopguard:dev"; \
	  $(IMAGE_TOOL) build --repo . --out bin/images --tar-out dist --only manager --address $(DEV_CONTAINERD_SOCK); \
	else \
	  $(IMAGE_TOOL) build --repo . --out bin/images --tar-out dist --only manager; \
	fi

.PHONY: image-agent
image-agent: ## Build dist/loopguard-agent.tar (loopguard-agent:dev, the node agent); import it into the dev node's containerd when it runs.
	cd hack/images && $(GO) build -o $(IMAGE_TOOL) .
	@if [ -S $(DEV_CONTAINERD_SOCK) ] && command -v ctr >/dev/null && timeout 5 ctr --address $(DEV_CONTAINERD_SOCK) version >/dev/null 2>&1; then \
	  echo "dev node's containerd is running: building and importing loopguard-agent:dev"; \
	  $(IMAGE_TOOL) build --repo . --out bin/images --tar-out dist --only agent --address $(DEV_CONTAINERD_SOCK); \
	else \
	  $(IMAGE_TOOL) build --repo . --out bin/images --tar-out dist --only agent; \
	fi

.PHONY: image-docker
image-docker: ## Build loopguard:dev with Docker (the Dockerfile), for those who have it.
	docker build -t loopguard:dev .

.PHONY: test-incluster
test-incluster: k8s build ## loopguard as a real pod on the dev node (root): install, webhook, Pod Security, certificate rotation.
	DEV_NODE=require hack/dev.sh up
	$(MAKE) image
	$(GO) test -count=1 -tags incluster ./test/incluster/... -v -timeout 20m; rc=$$?; hack/dev.sh down; exit $$rc
