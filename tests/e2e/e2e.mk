# End-to-end suites on the local Kubernetes (tests/cluster): the cluster's
# smoke tests, then the playbooks and modules (tests/e2e). `make test` runs
# the Ceph suites (ceph-e2e), molecule and the bench smoke beside them.
.PHONY: e2e

e2e: venv cluster-up
	$(MAKE) cluster-smoke
	KUBECONFIG=$(LOCAL_KUBECONFIG) STATEFUL_MYSQL_REQUIRE_CLUSTER=1 \
	  $(BIN)/python -m pytest -q -p no:cacheprovider --durations=25 -rfE \
	  --junitxml=$(JUNIT)/e2e.xml tests/e2e
