# Benchmarks and reliability drills on the local Kubernetes (bench/README.md).
# make bench                   all of them, full sizes (not in CI)
# make bench BENCH=rerun       one of them (time_to_cluster rerun secrets_vvv bad_inputs security kill_primary
#                              kill_replica delete_all lag copy_throughput scale_out replica_count roll
#                              backup_throughput)
# make bench-smoke             the CI variant: smallest sizes, one repetition
# make bench-report            only rewrite bench/results/report.md from the JSON files
.PHONY: bench bench-smoke bench-report

BENCH ?=

bench: venv
	KUBECONFIG=$(LOCAL_KUBECONFIG) $(BIN)/python bench/run.py $(BENCH)

bench-smoke: venv
	KUBECONFIG=$(LOCAL_KUBECONFIG) $(BIN)/python bench/run.py --smoke $(BENCH)

bench-report: venv
	$(BIN)/python bench/run.py --report
