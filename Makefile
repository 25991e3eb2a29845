# One command per check; `make test` runs them all (README).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PY313   ?= /root/.pyenv/versions/3.13.0/bin/python3
VENV    := $(CURDIR)/.venv
BIN     := $(VENV)/bin
CACHE   ?= $(HOME)/.cache/stateful-mysql
COLL    := $(CURDIR)/.collections/ansible_collections/stateful/mysql
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(BIN):$(PATH)
export STATEFUL_MYSQL_CACHE := $(CACHE)
# The local test cluster's admin kubeconfig (tests/cluster/).
LOCAL_KUBECONFIG := $(CACHE)/cluster/admin.kubeconfig

.PHONY: help venv lint sanity units units-oldest oldest runtime-venv test deploy e2e

help:
	@echo "make deploy   set up, then run site.yml on the current kubeconfig (or the local test cluster)"
	@echo "make test     set up, then run every check and test suite"
	@echo "make lint | sanity | units | integration | e2e | ceph-e2e | molecule | bench | bench-smoke"
	@echo "make cluster-up | cluster-down | cluster-status"

# The virtualenv is rebuilt when the requirements change: the runtime
# (requirements.txt) and the test toolchain (tests/requirements.txt).
$(VENV)/.stamp: requirements.txt tests/requirements.txt
	test -x $(PY313) || { echo "Python 3.13 not found at $(PY313) (set PY313=...)"; exit 1; }
	test -d $(VENV) || $(PY313) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt -r tests/requirements.txt
	touch $@

$(COLL):
	mkdir -p $(dir $(COLL))
	ln -sfn $(CURDIR) $(COLL)

venv: $(VENV)/.stamp $(COLL)

lint: venv
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint --profile production

units: venv
	$(BIN)/python -m pytest -q -n 2 tests/unit

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

units-oldest: venv $(OLDEST_STAMP)
	grep -q "requires_ansible: \">=$$($(OLDEST_BIN)/python -c 'import ansible.release as r; print(".".join(r.__version__.split(".")[:2]))').0\"" meta/runtime.yml
	$(OLDEST_ENV) $(OLDEST_BIN)/python -m pytest -q -p no:cacheprovider -n 2 tests/unit

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
e2e: runtime-venv

-include tests/cluster/cluster.mk
-include tests/integration/integration.mk
-include tests/ceph/ceph.mk
-include tests/e2e/e2e.mk
-include tests/sanity/sanity.mk
-include molecule/molecule.mk
-include bench/bench.mk

# Deploy to the cluster of the current kubeconfig; with none, to the local
# test cluster (built and started on first use) with its images.
deploy: venv
	@if [ -n "$${KUBECONFIG:-}" ] || [ -f "$$HOME/.kube/config" ]; then \
	  $(BIN)/ansible-playbook site.yml $(ARGS); \
	else \
	  echo "No kubeconfig: using the local test cluster (tests/cluster)"; \
	  $(MAKE) cluster-up; \
	  KUBECONFIG=$(LOCAL_KUBECONFIG) $(BIN)/ansible-playbook site.yml -e @tests/e2e/vars/local.yml $(ARGS); \
	fi

# A cluster-backed test fails, never skips, when make test runs it. The
# cluster suites run in two lanes on the one local cluster (tests/lanes.sh):
# sanity (single-threaded: the other core starts the e2e clusters) then the
# pytest e2e suite, and beside them the oldest ansible-core's checks, the
# integration tests, Ceph, molecule and the bench smoke (the two lanes' work
# is about even; the machine's two cores are the limit).
test: export STATEFUL_MYSQL_REQUIRE_CLUSTER := 1
test: lint units cluster-up runtime-venv
	tests/lanes.sh "sanity e2e" "oldest integration ceph-e2e molecule bench-smoke"
	@echo "all checks and suites passed"
