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

# make chaos [ROUNDS=200] [SEED=n] [MODE=sync|async|quorum|both] [FAULTS=kind,kind…] [ROUTING=1] [STANDBY=1]
# (FAULTS=fence: the fence fast-path kinds, which the default mix leaves out;
# ROUTING=1: one PgBouncer in front, driven by the agents, part of the writes
# through it, the routing fault kinds in the mix (FAULTS=routing: those alone)
# and the routing checker; needs the Debian package pgbouncer;
# STANDBY=1: a standby cluster follows the chaos cluster, with the standby
# kinds in the mix (FAULTS=standby: those alone) and the standby checkers)
ROUNDS  ?= 200
SEED    ?= 0
MODE    ?= sync
FAULTS  ?=
ROUTING ?=
STANDBY ?=

# Versions come from git (docs/operations.md, "Versions"): a tag vX.Y.Z
# makes X.Y.Z, a commit after it X.Y.Z-N-gHASH, "-dirty" marks uncommitted
# changes; with no tag at all, buildinfo.DefaultVersion. The date is the
# commit's (UTC), not the wall clock, so one commit always builds the same
# bytes (-trimpath, static): anyone can rebuild a release and compare sums.
VERSION ?= $(or $(patsubst v%,%,$(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null)),$(DEFAULT_VERSION))
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
DATE    ?= $(shell TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd 2>/dev/null)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
DEFAULT_VERSION := $(shell sed -n 's/^const DefaultVersion = "\(.*\)"/\1/p' internal/buildinfo/buildinfo.go)
BUILDINFO := github.com/regent-ha/regent/internal/buildinfo
LDFLAGS   := -X $(BUILDINFO).Version=$(VERSION) -X $(BUILDINFO).Commit=$(COMMIT) -X $(BUILDINFO).Date=$(DATE)

# Release artifacts (make release): static binaries per platform, a Debian
# package per architecture, SHA256SUMS. nfpm builds the packages; pinned
# and installed like the linter (kept out of our go.mod for the same reason).
DIST       := dist# packaging/nfpm.yaml names dist/pkg
ARCHS      ?= amd64 arm64
CMDS       := regent regentctl
NFPM_VERSION := v2.48.0
NFPM         := $(BIN)/nfpm-$(NFPM_VERSION)

.PHONY: all build test test-unit test-e2e vet demo bench clean chaos release deb binaries

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/regent ./cmd/regentctl ./cmd/regent-demo

# Static (CGO_ENABLED=0): they run on any Linux of the architecture, no libc
# needed. Without the symbol table and DWARF (-s -w: about 30% smaller; panics
# still print full stacks). Always rebuilt (go build is incremental): a stale binary under a
# new version would be the worst kind of artifact.
binaries:
	@mkdir -p $(DIST)
	@set -e; for arch in $(ARCHS); do for cmd in $(CMDS); do \
		echo "build $(DIST)/$$cmd-linux-$$arch ($(VERSION))"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' \
			-o $(DIST)/$$cmd-linux-$$arch ./cmd/$$cmd; \
	done; done

# The Debian package (packaging/nfpm.yaml): binaries in /usr/bin, the unit
# in /lib/systemd/system (examples/systemd/regent.service with the packaged
# path), /etc/regent/regent.yml.example (a conffile), docs in
# /usr/share/doc/regent. Installing never starts the service.
deb: binaries $(NFPM)
	@mkdir -p $(DIST)/pkg
	sed 's|/usr/local/bin/regent|/usr/bin/regent|g' examples/systemd/regent.service > $(DIST)/pkg/regent.service
	@set -e; for arch in $(ARCHS); do \
		for cmd in $(CMDS); do cp $(DIST)/$$cmd-linux-$$arch $(DIST)/pkg/$$cmd; done; \
		VERSION='$(VERSION)' ARCH=$$arch SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(NFPM) package -f packaging/nfpm.yaml -p deb -t $(DIST)/; \
	done

release: deb
	cd $(DIST) && sha256sum $(foreach a,$(ARCHS),$(foreach c,$(CMDS),$(c)-linux-$(a))) *.deb > SHA256SUMS
	@cd $(DIST) && ls -l $(foreach a,$(ARCHS),$(foreach c,$(CMDS),$(c)-linux-$(a))) *.deb SHA256SUMS && cat SHA256SUMS

$(NFPM):
	@mkdir -p $(BIN)
	GOBIN=$(CURDIR)/$(BIN) $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
	mv $(BIN)/nfpm $@

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
# agent (with STANDBY=1 also the standby self-test: a standby member promoted
# behind its agent's back must fail the standby read-only checker). The report
# goes to $(BIN)/chaos-report-<mode>.txt; a failure prints the seed, the fault
# timeline and the offending history.
chaos:
	@mkdir -p $(BIN)
	$(GO) test -count=1 -v -timeout 0 -run 'TestChaos$$|TestChaosCatchesUnsafeBuild|TestChaosStandbyCatchesAWritableMember' ./internal/chaos \
		-args -chaos.rounds=$(ROUNDS) -chaos.seed=$(SEED) -chaos.mode=$(MODE) \
		-chaos.faults=$(FAULTS) -chaos.routing=$(if $(filter 1,$(ROUTING)),true,false) \
		-chaos.standby=$(if $(filter 1,$(STANDBY)),true,false) \
		-chaos.report=$(CURDIR)/$(BIN)/chaos-report.txt

# ROUTING=1 adds write ports through PgBouncer and HAProxy (Debian packages
# pgbouncer, haproxy) to watch a switchover with a client running.
demo: build
	$(BIN)/regent-demo -regent $(BIN)/regent$(if $(filter 1,$(ROUTING)), -routing)

# bench runs every measurement with real processes (about 75 minutes, 60 of
# them the two 30-minute false-failover windows; run it on an otherwise idle
# machine) and writes bench/results/<date>.json and .md, printing the
# summary. BENCH_FLAGS passes -bench.* flags, e.g.
# BENCH_FLAGS='-bench.reps=2 -bench.scale=none -bench.false-window=2m' for a
# quick look, or BENCH_FLAGS='-bench.only=switchover' (or fence_fast, or
# false_failover) for one part alone; the list: $(BIN)/regent-bench -h. The
# test binary runs from here (the harness builds ./cmd/regent from this
# module).
BENCH_FLAGS ?=
bench:
	$(GO) test -c -o $(BIN)/regent-bench ./bench
	$(BIN)/regent-bench -test.run '^TestBench$$' -test.timeout 150m -bench.out $(CURDIR)/bench/results $(BENCH_FLAGS)

clean:
	rm -rf $(BIN) $(DIST)
