# One command per check; `make test` runs them all (README).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PY313   ?= /root/.pyenv/versions/3.13.0/bin/python3
VENV    := $(CURDIR)/.venv
BIN     := $(VENV)/bin
CACHE   ?= $(HOME)/.cache/stateful-mysql
# Each pytest suite's junit file, read by tests/ci_report.py.
JUNIT   := $(CACHE)/junit
COLL    := $(CURDIR)/.collections/ansible_collections/stateful/mysql
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(BIN):$(PATH)
export STATEFUL_MYSQL_CACHE := $(CACHE)
# The local test cluster's admin kubeconfig (tests/cluster/).
LOCAL_KUBECONFIG := $(CACHE)/cluster/admin.kubeconfig

.PHONY: help venv lint sanity units units-oldest oldest runtime-venv test test-full deploy e2e

help:
	@echo "make deploy     set up, then run site.yml on the current kubeconfig (or the local test cluster)"
	@echo "make test       set up, then run the landing tier (what CI runs)"
	@echo "make test-full  set up, then run every test there is (the full tier)"
	@echo "make lint | sanity | units | integration | e2e | ceph-e2e | molecule | bench | bench-smoke"
	@echo "make cluster-up | cluster-down | cluster-status"

# The virtualenv lives in the cache, named by its requirements' content
# (the runtime's and the test toolchain's), and .venv links to it: a fresh
# clone finds it built (2.5 min otherwise). A change of either file makes
# a new one.
VENV_STORE := $(CACHE)/venv-main-$(shell cat requirements.txt tests/requirements.txt | sha256sum | cut -c1-16)

$(VENV_STORE)/.stamp:
	test -x $(PY313) || { echo "Python 3.13 not found at $(PY313) (set PY313=...)"; exit 1; }
	rm -rf $(VENV_STORE) && $(PY313) -m venv $(VENV_STORE)
	$(VENV_STORE)/bin/pip install -q --upgrade pip
	$(VENV_STORE)/bin/pip install -q -r requirements.txt -r tests/requirements.txt
	touch $@

$(COLL):
	mkdir -p $(dir $(COLL))
	ln -sfn $(CURDIR) $(COLL)

venv: $(VENV_STORE)/.stamp $(COLL)
	@if [ "$$(readlink $(VENV))" != "$(VENV_STORE)" ]; then rm -rf $(VENV) && ln -s $(VENV_STORE) $(VENV); fi

lint: venv
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint --profile production

units: venv
	$(BIN)/python -m pytest -q -n 2 --junitxml=$(JUNIT)/units.xml tests/unit

# The oldest ansible-core meta/runtime.yml claims (requires_ansible), in a
# virtualenv of its own outside the tree; the collections the roles use come
# from the main one. `make test` runs its unit tests and sanity.
OLDEST_VENV := $(CACHE)/venv-ansible-core-oldest
OLDEST_BIN  := $(OLDEST_VENV)/bin
OLDEST_ENV  := ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.collections:$(VENV)/lib/python3.13/site-packages

OLDEST_STAMP := $(OLDEST_VENV)/.stamp-$(shell sha256sum tests/requirements-oldest.txt | cut -c1-16)

$(OLDEST_STAMP):
	rm -rf $(OLDEST_VENV) && $(PY313) -m venv $(OLDEST_VENV)
	$(OLDEST_BIN)/pip install -q --upgrade pip
	$(OLDEST_BIN)/pip install -q -r tests/requirements-oldest.txt
	touch $@

# Only the unit tests that run ansible-core (playbooks, the role's
# templates and validation, the modules): the others (SQL, GTID, the
# replication table, the README, the bench harness) would only repeat.
UNITS_ANSIBLE := tests/unit/roles tests/unit/plugins/modules tests/unit/test_day2_inputs.py \
                 tests/unit/test_collection_mechanics.py

units-oldest: venv $(OLDEST_STAMP)
	grep -q "requires_ansible: \">=$$($(OLDEST_BIN)/python -c 'import ansible.release as r; print(".".join(r.__version__.split(".")[:2]))').0\"" meta/runtime.yml
	$(OLDEST_ENV) $(OLDEST_BIN)/python -m pytest -q -p no:cacheprovider -n 2 --junitxml=$(JUNIT)/units-oldest.xml $(UNITS_ANSIBLE)

oldest: units-oldest sanity-oldest

# What a user installs: only the runtime requirements (no test toolchain).
# The e2e suite builds and installs the collection into it and runs
# stateful.mysql.site from there (tests/e2e/test_site.py).
RUNTIME_VENV := $(CACHE)/venv-runtime

# Kept outside the tree, so its stamp names the requirements' content: a
# fresh clone (CI) has newer files but needs no rebuild (about 2.5 min).
RUNTIME_STAMP := $(RUNTIME_VENV)/.stamp-$(shell sha256sum requirements.txt | cut -c1-16)

$(RUNTIME_STAMP):
	rm -rf $(RUNTIME_VENV) && $(PY313) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/pip install -q --upgrade pip
	$(RUNTIME_VENV)/bin/pip install -q -r requirements.txt
	touch $@

runtime-venv: $(RUNTIME_STAMP)

-include tests/cluster/cluster.mk
-include tests/integration/integration.mk
-include tests/ceph/ceph.mk
-include tests/e2e/e2e.mk
-include tests/sanity/sanity.mk
-include molecule/molecule.mk
-include bench/bench.mk

# Deploy to the cluster of the current kubeconfig; with none, to the local
# test cluster (built and started on first use) with its images. Later runs
# of the playbooks (README "Use") keep what this one chose: unset settings
# keep their live values. USER_KUBECONFIG: tests/e2e/test_budget.py points
# it elsewhere to take the no-kubeconfig path on any machine.
USER_KUBECONFIG ?= $(HOME)/.kube/config
deploy: venv
	@if [ -n "$${KUBECONFIG:-}" ] || [ -f "$(USER_KUBECONFIG)" ]; then \
	  $(BIN)/ansible-playbook site.yml $(ARGS); \
	else \
	  echo "No kubeconfig: using the local test cluster (tests/cluster)"; \
	  $(MAKE) cluster-up; \
	  KUBECONFIG=$(LOCAL_KUBECONFIG) $(BIN)/ansible-playbook site.yml -e @tests/e2e/vars/local.yml $(ARGS) && \
	  echo "For the playbooks of README \"Use\": export KUBECONFIG=$(LOCAL_KUBECONFIG)"; \
	fi

# The two tiers (README "Tests", tests/tiers.py). tests/ci.sh starts the
# local cluster's build and start in the background, runs venv, lint, units
# and sanity meanwhile, then the cluster suites in two lanes on the one
# local cluster (tests/lanes.sh). A cluster-backed test fails, never skips.
# make test: the landing tier, what CI runs (budget: 40 min warm, 65 cold).
test:
	tests/ci.sh landing

# make test-full: every test on every flavor, the three molecule scenarios,
# Ceph on the v1.30 control plane, ansible-core 2.19, the bench smoke.
test-full:
	tests/ci.sh full
