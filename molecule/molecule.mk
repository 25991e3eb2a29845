# Molecule scenarios (molecule/) on the cluster of KUBECONFIG, by default the
# local test cluster (tests/cluster). Each scenario runs in a `molecule test`
# of its own, so that each has its exit status (`molecule test --all` stops at
# the first failure with one status); the closing line counts those statuses.
# No galaxy step: the collection is the checkout, through .collections.
.PHONY: molecule

# Every scenario directory, as `molecule test --all` finds them; the landing
# tier (STATEFUL_MYSQL_TIER=landing, make test) runs `default`, the user's
# entry point.
ALL_MOLECULE_SCENARIOS := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard $(CURDIR)/molecule/*/molecule.yml)))))
ifeq ($(STATEFUL_MYSQL_TIER),landing)
MOLECULE_SCENARIOS ?= default
else
MOLECULE_SCENARIOS ?= $(ALL_MOLECULE_SCENARIOS)
endif

molecule: venv
	@export KUBECONFIG="$${KUBECONFIG:-$(LOCAL_KUBECONFIG)}" MOLECULE_GLOB='molecule/*/molecule.yml'; \
	passed=0; failed=0; names=""; \
	for s in $(MOLECULE_SCENARIOS); do \
	  started=$$(date +%s); \
	  if $(BIN)/molecule test -s "$$s"; then passed=$$((passed + 1)); result=passed; \
	  else failed=$$((failed + 1)); names="$$names $$s"; result=FAILED; fi; \
	  echo "molecule scenario $$s: $$result in $$(( $$(date +%s) - started )) s"; \
	  [ -z "$${CI_TIMINGS:-}" ] || printf 'step\t  molecule %s\t%s\t%s\t%s\n' "$$s" "$$started" "$$(date +%s)" \
	    "$$([ $$result = passed ] && echo 0 || echo 1)" >>"$$CI_TIMINGS"; \
	done; \
	echo "$$passed passed, $$failed failed$${names:+ (failed:$$names)}"; \
	test "$$failed" -eq 0
