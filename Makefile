# Regent — make targets. `make demo` runs a real local cluster; `make test`
# runs every test (unit with -race, then the end-to-end suite); `make bench`
# measures this machine (see bench/doc.go).
GO      ?= go
BIN     := bin
# Unit packages get -race; the process-level e2e suite does not (it starts
# real PostgreSQL and agent processes and would only slow down). The chaos
# suite's short run (a few rounds per mode, in network namespaces) is part
# of it; `make chaos` is the long run.
E2E_PKGS  := ./internal/e2e/... ./internal/chaos/...
UNIT_PKGS := $(shell $(GO) list ./... | grep -v -e /internal/e2e -e /internal/chaos)

# The linter, pinned: `go install pkg@version` builds it from its own
# go.mod, checked against the checksum database, so every machine runs the
# same analyzers; the version in the file name reinstalls it on a bump.
# Kept out of our go.mod (a `tool` line would pull its ~200 modules into
# this module's graph). Configuration: .golangci.yml.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT         := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)

# make chaos [ROUNDS=200] [SEED=n] [MODE=sync|async|both] [FAULTS=kind,kind…]
ROUNDS ?= 200
SEED   ?= 0
MODE   ?= sync
FAULTS ?=

.PHONY: all build test test-unit test-e2e vet demo bench clean chaos

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/regent ./cmd/regentctl ./cmd/regent-demo

vet: $(GOLANGCI_LINT)
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	@mkdir -p $(BIN)
	GOBIN=$(CURDIR)/$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/golangci-lint $@

test: vet test-unit test-e2e

test-unit:
	$(GO) test -race -count=1 -timeout 15m $(UNIT_PKGS)

test-e2e:
	$(GO) test -count=1 -p 1 -timeout 45m $(E2E_PKGS)

# The long fault-injection run (root: network namespaces; 13–20 s a round, so
# about an hour for 200), then the self-test against a deliberately broken
# agent. The report goes to $(BIN)/chaos-report-<mode>.txt; a failure prints
# the seed, the fault timeline and the offending history.
chaos:
	@mkdir -p $(BIN)
	$(GO) test -count=1 -v -timeout 0 -run 'TestChaos$$|TestChaosCatchesUnsafeBuild' ./internal/chaos \
		-args -chaos.rounds=$(ROUNDS) -chaos.seed=$(SEED) -chaos.mode=$(MODE) \
		-chaos.faults=$(FAULTS) -chaos.report=$(CURDIR)/$(BIN)/chaos-report.txt

demo: build
	$(BIN)/regent-demo -regent $(BIN)/regent

# bench runs every measurement with real processes (9 to 12 minutes; run it
# on an otherwise idle machine) and writes bench/results/<date>.json and .md,
# printing the summary. BENCH_FLAGS passes -bench.* flags, e.g.
# BENCH_FLAGS='-bench.reps=2 -bench.scale=none' for a quick look, or
# BENCH_FLAGS='-bench.only=switchover' for the switchovers alone; the list:
# $(BIN)/regent-bench -h. The test binary runs from here (the harness builds
# ./cmd/regent from this module).
BENCH_FLAGS ?=
bench:
	$(GO) test -c -o $(BIN)/regent-bench ./bench
	$(BIN)/regent-bench -test.run '^TestBench$$' -test.timeout 45m -bench.out $(CURDIR)/bench/results $(BENCH_FLAGS)

clean:
	rm -rf $(BIN)
