# cardharness: the two commands a newcomer needs are `make run` and
# `make test`; both install what is missing first (Debian, as root or with
# sudo). Everything else here is for developers.

GO        ?= go
BUILD     := build
BIN       := $(BUILD)/cardharness
TOOLS     := $(abspath $(BUILD)/tools)
GOTESTSUM := $(TOOLS)/gotestsum
STATICCHECK := $(TOOLS)/staticcheck

# Pinned tool versions (the module proxy serves these; bump on purpose).
GOTESTSUM_VERSION   := v1.13.0
STATICCHECK_VERSION := v0.8.2

# Debian packages: the PC/SC stack, the vpcd driver, the middleware the
# end-to-end tests drive, the tools the stack and tests call, and the
# headless browser that checks the HTML report.
APT_PACKAGES := pcscd libpcsclite-dev pkg-config vsmartcard-vpcd opensc opensc-pkcs11 \
                pcsc-tools openssl util-linux iproute2 chromium curl libengine-pkcs11-openssl

SHELL := bash
.SHELLFLAGS := -eo pipefail -c

FUZZTIME ?= 15s
BENCHTIME ?= 1s
BENCHCOUNT ?= 3
# `make run` arguments, e.g. make run ARGS="--stack direct --run S11"
ARGS ?=

.PHONY: all deps apt-deps tools build run test unit lint fmt-check crossbuild bench fuzz soak clean

all: build

## deps: install missing Debian packages and the pinned Go tools
deps: apt-deps tools

apt-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: Debian packages present"; exit 0; fi; \
	echo "deps: installing$$missing"; \
	sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	$$sudo apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing

tools: $(GOTESTSUM) $(STATICCHECK)

$(GOTESTSUM):
	GOBIN=$(TOOLS) $(GO) install gotest.tools/gotestsum@$(GOTESTSUM_VERSION)

$(STATICCHECK):
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## build: the cardharness binary in build/
build:
	$(GO) build -o $(BIN) ./cmd/cardharness

## run: the main job: the built-in scenario suite on private pcscd stacks
## (JUnit in build/scenarios.xml); make run ARGS="--stack direct" etc.
run: deps build
	$(BIN) run --junit $(BUILD)/scenarios.xml $(ARGS)

## test: lint, cross-builds, then every test (real pcscd + vpcd included);
## JUnit XML in build/junit.xml
test: deps lint crossbuild unit

unit: $(GOTESTSUM)
	@mkdir -p $(BUILD)
	$(GOTESTSUM) --junitfile $(BUILD)/junit.xml --format pkgname-and-test-fails -- -count=1 ./...

## lint: gofmt, go vet, staticcheck
lint: fmt-check $(STATICCHECK)
	$(GO) vet ./...
	$(STATICCHECK) ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## crossbuild: the card side is pure Go and must build for Windows and macOS
crossbuild:
	GOOS=windows CGO_ENABLED=0 $(GO) build ./vcard/...
	GOOS=darwin CGO_ENABLED=0 $(GO) build ./vcard/...
	GOOS=windows $(GO) build ./...

# Ratios printed by `make bench`: TARGET:BASELINE[<=MAX], both measured in
# the same run (see internal/benchratio).
BENCH_RATIOS := \
	-ratio 'RoundTrip/stack-gids-getdata:RoundTrip/stack-echo<=1.15' \
	-ratio 'RoundTrip/stack-echo-noquickack:RoundTrip/stack-echo' \
	-ratio 'RoundTrip/stack-echo:RoundTrip/direct-echo' \
	-ratio 'RoundTrip/direct-gids-getdata:RoundTrip/direct-echo' \
	-ratio 'Start/one-card:Start/empty' \
	-ratio 'Start/four-cards:Start/empty' \
	-ratio 'Suite/direct:Suite/direct-randomkeys' \
	-ratio 'Suite/pcscd:Suite/direct' \
	-ratio 'Suite/pcscd-reuse:Suite/pcscd' \
	-ratio 'Suite/pcscd-reuse-parallel6:Suite/pcscd-parallel6'

## bench: round trips per second through the stack and in process; the
## built-in suite per run and in scenarios/s in process (seeded keys, and
## real key generation as the baseline) and on private pcscd stacks, with
## CPU time per run (cpu-s/op); a 64-variant sweep of the suite (runs/s,
## CPU time, peak heap); the OpenSC peer suite
## (harness/tools, no baseline in the same run, so no ratio); and the ratios
bench: deps
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -count $(BENCHCOUNT) ./... | $(GO) run ./internal/benchratio $(BENCH_RATIOS)

## fuzz: every fuzz target for FUZZTIME each; fails if a target fails or
## makes fewer than FUZZMIN executions (a target that cannot explore in its
## budget is not fuzzing). Prints each target's count at the end. A bare
## "context deadline exceeded" at the end of the budget with no failing
## input written is Go 1.26's coordinator race (golang/go#75804, fixed in Go
## 1.27): that target runs once more, and fails if it happens again.
## FUZZMINIMIZE bounds the minimisation of each new input: Go's minimiser
## is quadratic in the input's length and its default budget is 60 s, so a
## target seeded with a 2 KB signed CMS response spent its whole FUZZTIME
## minimising its first new-coverage input and made ~20 executions. A
## crasher is still minimised within the same bound; raise it to shrink one
## further (make fuzz FUZZMINIMIZE=60s).
FUZZMIN ?= 1000
FUZZMINIMIZE ?= 1000x
fuzz:
	@summary=""; fail=0; log=$$(mktemp); trap 'rm -f $$log' EXIT; \
	for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz: $$pkg $$f ($(FUZZTIME))"; \
	    corpus="$$($(GO) list -f '{{.Dir}}' $$pkg)/testdata/fuzz/$$f"; \
	    before=$$({ ls "$$corpus" 2>/dev/null || true; } | wc -l); ok=0; \
	    for try in 1 2; do \
	      if $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg 2>&1 | tee $$log; then ok=1; break; fi; \
	      after=$$({ ls "$$corpus" 2>/dev/null || true; } | wc -l); \
	      if [ "$$after" != "$$before" ] || ! grep -q '^    context deadline exceeded$$' $$log || [ $$try = 2 ]; then break; fi; \
	      echo "fuzz: $$f: 'context deadline exceeded' with no failing input written: Go 1.26's fuzz coordinator race (golang/go#75804), not the target; running it again"; \
	    done; \
	    if [ $$ok = 0 ]; then \
	      summary="$$summary\nFAIL  $$pkg $$f: the target failed (see above)"; fail=1; continue; \
	    fi; \
	    n=$$(grep -o 'execs: [0-9]*' $$log | tail -n 1 | grep -o '[0-9]*$$' || true); n=$${n:-0}; \
	    if [ "$$n" -lt $(FUZZMIN) ]; then \
	      summary="$$summary\nSLOW  $$pkg $$f: $$n execs in $(FUZZTIME), fewer than FUZZMIN=$(FUZZMIN)"; fail=1; \
	    else \
	      summary="$$summary\nok    $$pkg $$f: $$n execs"; \
	    fi; \
	  done; \
	done; \
	echo; echo "fuzz summary (FUZZTIME=$(FUZZTIME), FUZZMIN=$(FUZZMIN), FUZZMINIMIZE=$(FUZZMINIMIZE)):"; echo -e "$$summary" | sed '/^$$/d'; \
	exit $$fail

## soak: 16 cards on one private stack under random minidriver traffic,
## link faults (remove/insert, hang, drop) and card kills from their state,
## for DURATION (default 10m); prints a summary, fails on a hang past the
## deadline, a card panic, an undecodable state, an unexplained error or
## growing memory. Not part of `make test` or CI. SOAKARGS: see
## `go run ./cmd/soak -h` (e.g. -seed N, -cards N, -quick-reinsert).
DURATION ?= 10m
SOAKARGS ?=
soak: deps
	$(GO) build -o $(BUILD)/soak ./cmd/soak
	$(BUILD)/soak -duration $(DURATION) $(SOAKARGS)

clean:
	rm -rf $(BUILD) cardharness
