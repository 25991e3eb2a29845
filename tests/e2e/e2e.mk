# End-to-end suites on the local Kubernetes (tests/cluster): the cluster's
# smoke tests, then the playbooks and modules (tests/e2e). The tiers
# (tests/ci.sh) run them as two pytest sessions in the two lanes, each file
# in exactly one (tests/unit/test_ci_lanes.py): the files on the suite's
# shared clusters (conftest.deployed_cluster), and those with clusters of
# their own. `make e2e` runs both, one after the other.
.PHONY: e2e e2e-shared e2e-own

# In this order (pytest keeps it within each flavor's group): test_site.py's
# drills change the shared clusters (restarts, a fourth pod) and run last;
# its restart drill counts test_primary_recovery.py's reseed. test_budget.py
# deploys the default cluster mysql/mysql, as molecule default does: in this
# session, which its lane runs before molecule, never beside it.
E2E_SHARED := tests/e2e/test_budget.py tests/e2e/test_day2.py tests/e2e/test_modules.py tests/e2e/test_pod_security.py \
              tests/e2e/test_primary_recovery.py tests/e2e/test_security.py tests/e2e/test_backup.py tests/e2e/test_site.py
E2E_OWN    := tests/e2e/test_network_policy.py tests/e2e/test_returning.py tests/e2e/test_primary_away.py \
              tests/e2e/test_data_safety.py tests/e2e/test_secret_lifecycle.py \
              tests/e2e/test_restricted.py tests/e2e/test_upgrade.py
E2E_PYTEST := KUBECONFIG=$(LOCAL_KUBECONFIG) STATEFUL_MYSQL_REQUIRE_CLUSTER=1 \
              $(BIN)/python -m pytest -q -p no:cacheprovider --durations=25 -rfE

e2e: e2e-shared e2e-own

e2e-shared: venv cluster-up runtime-venv
	$(MAKE) cluster-smoke
	$(E2E_PYTEST) --junitxml=$(JUNIT)/e2e-shared.xml $(E2E_SHARED)

e2e-own: venv cluster-up
	$(E2E_PYTEST) --junitxml=$(JUNIT)/e2e-own.xml $(E2E_OWN)
