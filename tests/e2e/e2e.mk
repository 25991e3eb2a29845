# End-to-end suites on the local Kubernetes (tests/cluster): the cluster's
# smoke tests, the playbooks and modules (tests/e2e), and the Ceph suites.
.PHONY: e2e

e2e: venv cluster-up
	$(MAKE) cluster-smoke
	KUBECONFIG=$(LOCAL_KUBECONFIG) STATEFUL_MYSQL_REQUIRE_CLUSTER=1 \
	  $(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e
	$(MAKE) ceph-e2e
