# ansible-test sanity on a copy of the tree laid out as
# ansible_collections/stateful/mysql (where ansible-test must run), with the
# main toolchain (sanity) and with the oldest ansible-core that
# meta/runtime.yml claims (sanity-oldest, virtualenv from the top Makefile).
SANITY_DIR := $(CACHE)/sanity/ansible_collections/stateful/mysql
SANITY_OLDEST_DIR := $(CACHE)/sanity-oldest/ansible_collections/stateful/mysql

.PHONY: sanity sanity-oldest shellcheck-installed

# ansible-test's shellcheck test silently passes without the binary: install
# it (Debian package) so that the scripts are really checked on a clean machine.
shellcheck-installed:
	command -v shellcheck >/dev/null || { apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  apt-get -o DPkg::Lock::Timeout=600 install -y -qq shellcheck; }
	command -v shellcheck >/dev/null

# $(call run_sanity,BIN,DIR): ansible-test looks for get_pip_<its pip
# version>.py in its cache.
define run_sanity
	rm -rf $(2) && mkdir -p $(2)
	git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t $(2)
	mkdir -p $(HOME)/.ansible/test/cache
	cp tests/sanity/get_pip.py $(HOME)/.ansible/test/cache/get_pip_$$(grep -ohE "pip='[0-9.]+'" $$($(1)/python -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py | head -n1 | tr -dc '0-9.' | tr . _).py
	cd $(2) && $(1)/ansible-test sanity --python 3.13 --requirements
endef

sanity: venv shellcheck-installed
	$(call run_sanity,$(BIN),$(SANITY_DIR))

sanity-oldest: venv shellcheck-installed $(OLDEST_STAMP)
	$(call run_sanity,$(OLDEST_BIN),$(SANITY_OLDEST_DIR))
