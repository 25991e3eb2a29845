# ansible-test sanity on a copy of the tree laid out as
# ansible_collections/stateful/mysql (where ansible-test must run).
SANITY_DIR := $(CACHE)/sanity/ansible_collections/stateful/mysql
# ansible-test looks for get_pip_<its pip version>.py in its cache.
ANSIBLE_TEST_PIP = $(shell grep -ohE "pip='[0-9.]+'" $(VENV)/lib/python3.13/site-packages/ansible_test/_internal/python_requirements.py | head -n1 | tr -dc '0-9.' | tr . _)

.PHONY: sanity

sanity: venv
	rm -rf $(SANITY_DIR) && mkdir -p $(SANITY_DIR)
	git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t $(SANITY_DIR)
	mkdir -p $(HOME)/.ansible/test/cache
	cp tests/sanity/get_pip.py $(HOME)/.ansible/test/cache/get_pip_$(ANSIBLE_TEST_PIP).py
	cd $(SANITY_DIR) && $(BIN)/ansible-test sanity --python 3.13 --requirements
