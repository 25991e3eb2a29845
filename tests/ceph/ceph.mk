# The Ceph modules and role against a real one-node Ceph, and the in-tree RBD
# provisioner on a v1.30 control plane (issue 11). Included by the top Makefile.
# The CSI content test also needs the main local cluster (make cluster-up):
# it uses $KUBECONFIG or $(CACHE)/cluster/admin.kubeconfig, and fails instead
# of skipping when STATEFUL_MYSQL_REQUIRE_CLUSTER=1.
CEPH_TEST_DIR := $(CURDIR)/tests/ceph

.PHONY: ceph-e2e ceph-up ceph-down k8s130-build

## ceph-e2e: install Ceph packages, start Ceph + the v1.30 control plane, run tests/ceph, stop them (always)
ceph-e2e: venv
	$(CEPH_TEST_DIR)/run-e2e.sh $(PYTEST_ARGS)

## ceph-up / ceph-down: the one-node Ceph alone, for working on the modules
ceph-up:
	$(CEPH_TEST_DIR)/deps.sh
	$(CEPH_TEST_DIR)/harness/ceph.sh up

ceph-down:
	$(CEPH_TEST_DIR)/harness/ceph.sh down

## k8s130-build: build (cached) the v1.30 control plane's binaries, under the build lock
k8s130-build:
	$(CEPH_TEST_DIR)/harness/k8s130.sh build
