# Regent — make targets. `make demo` runs a real local cluster; `make test`
# runs every test (unit with -race, then the end-to-end suite).
GO      ?= go
BIN     := bin
# Unit packages get -race; the process-level e2e suite does not (it starts
# real PostgreSQL and agent processes and would only slow down).
E2E_PKGS  := ./internal/e2e/...
UNIT_PKGS := $(shell $(GO) list ./... | grep -v /internal/e2e)

.PHONY: all build test test-unit test-e2e vet demo clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/regent ./cmd/regentctl

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

test: vet test-unit test-e2e

test-unit:
	$(GO) test -race -count=1 -timeout 15m $(UNIT_PKGS)

test-e2e:
	$(GO) test -count=1 -p 1 -timeout 25m $(E2E_PKGS)

demo: build
	$(BIN)/regent demo

clean:
	rm -rf $(BIN)
