# Modules against real MariaDB replication on loopback (no Kubernetes).
# `make integration` installs Debian's MariaDB 10.11 when missing (without
# letting its service start) and runs tests/integration with pytest; each
# test session starts its own mariadbd instances under a temp dir.
.PHONY: integration integration-deps

integration-deps:
	@if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then \
	  echo "installing mariadb-server and mariadb-client (Debian)"; \
	  created=; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; created=1; \
	  fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get -o DPkg::Lock::Timeout=600 update -q && \
	  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends mariadb-server mariadb-client; \
	  rc=$$?; [ -z "$$created" ] || rm -f /usr/sbin/policy-rc.d; [ $$rc -eq 0 ]; \
	fi
	@# A packaged service must not hold port 3306 (we use our own ports, but
	@# tests and users expect 3306 free); stop it by its own pid file.
	@if [ -s /run/mysqld/mysqld.pid ] && kill -0 "$$(cat /run/mysqld/mysqld.pid)" 2>/dev/null; then \
	  echo "stopping the packaged mariadbd (pid $$(cat /run/mysqld/mysqld.pid))"; \
	  kill "$$(cat /run/mysqld/mysqld.pid)"; \
	fi

integration: venv integration-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider --junitxml=$(JUNIT)/integration.xml tests/integration $(PYTEST_ARGS)
