# The local single-node Kubernetes the e2e suites run on (issue 9).
# Included by the top Makefile; the logic is in the scripts next to this
# file (see tests/cluster/README.md).
CLUSTER_DIR := $(CURDIR)/tests/cluster

.PHONY: cluster-up cluster-down cluster-status cluster-smoke images

## cluster-up: build what is missing, start the cluster, wait for node Ready and pod DNS
cluster-up:
	$(CLUSTER_DIR)/up.sh

## cluster-down: stop every process it started, remove its state, chains, bridge, netns
cluster-down:
	$(CLUSTER_DIR)/down.sh

## cluster-status: what runs, its pid and its log
cluster-status:
	$(CLUSTER_DIR)/status.sh

## cluster-smoke: the cluster's smoke tests (pytest) against the running cluster
cluster-smoke: venv
	CLUSTER_SMOKE=1 $(BIN)/python -m pytest -q -p no:cacheprovider --junitxml=$(JUNIT)/cluster-smoke.xml tests/cluster

## images: build (or find cached) the local images
images:
	$(CLUSTER_DIR)/images/build-image.sh --all
