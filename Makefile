# tickgate — `make test` installs what it needs on a fresh Debian machine
# (as root) and runs every check; `make demo` boots a throwaway systemd host
# and deploys inventory/demo to it. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
VENV_BIN    := $(VENV)/bin
export PATH := $(CURDIR)/$(VENV_BIN):$(PATH)
GO          ?= go
VERSION     ?= $(shell scripts/version)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
APT_PACKAGES := debootstrap systemd-container openssh-client python3-venv util-linux time gcc libc6-dev postgresql pgbouncer faketime iptables iproute2
STEPS       := scripts/run-steps
# The role's Python (filter plugin, module, tests) is formatted with black.
BLACK_FLAGS := --line-length 130
# Go native fuzz targets (package:Target); make test runs each briefly.
FUZZ_TARGETS := gate:FuzzParse state:FuzzParseState state:FuzzParseLazy state:FuzzParseMarker timespec:FuzzParseDuration timespec:FuzzParseTime cli:FuzzParseCodes textsafe:FuzzClean
FUZZTIME    ?= 60s
# make test's brief run: a count of inputs, not a duration. A -fuzztime
# duration races Go's fuzz coordinator (golang/go#75804, fixed in Go 1.27):
# the deadline can surface as a failure, "context deadline exceeded", with
# no crasher; a count sets no deadline.
FUZZ_BRIEF  := 20000x
# promtool, from Debian's prometheus package, unpacked under .cache (nothing
# installed system-wide, no Prometheus service started).
PROMTOOL    := .cache/promtool/root/usr/bin/promtool

.PHONY: help
help:
	@echo "make test        install what is missing, then every check (Go, filters, lint, molecule on nspawn hosts)"
	@echo "make test-go     go vet, staticcheck, go test -race"
	@echo "make lint        ansible-lint (production) and yamllint"
	@echo "make molecule    molecule test --all (real systemd hosts)"
	@echo "make fuzz        each Go fuzz target for FUZZTIME (default 60s)"
	@echo "make chaos       the fleet fault-injection suite, CHAOS_ROUNDS rounds of each fault (default 5)"
	@echo "make docs        regenerate docs/role-variables.md from the role's argument specs"
	@echo "make rules       promtool check and test of monitoring/tickgate.rules.yml"
	@echo "make bench       helper and deploy benchmarks (figures, no pass/fail)"
	@echo "make demo        boot a demo host, deploy inventory/demo, run each job once"
	@echo "make demo-fleet  boot two demo hosts and a PostgreSQL, deploy inventory/demo-fleet"
	@echo "make demo-clean  stop and remove the demo hosts (and the fleet demo's database)"
	@echo "make build       dist/tickgate, dist/tickgate-tick and dist/tickgate-exec (static)"
	@echo "make dist        the collection tarball, the .deb (amd64, arm64) and sha256sums in dist/"
	@echo "make adoption    make dist, then install and deploy them as a team would (bookworm and trixie hosts)"
	@echo "make test-trixie helper/e2e on PostgreSQL 17, the fleet and policies scenarios on trixie hosts"

# --- installs ---------------------------------------------------------------
.PHONY: deps apt-deps venv go-deps
deps: apt-deps venv go-deps $(PROMTOOL)

apt-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV_BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

go-deps:
	$(GO) mod download

$(PROMTOOL):
	mkdir -p .cache/promtool
	cd .cache/promtool && rm -f prometheus_*.deb && \
	  { apt-get download -qq prometheus 2>/dev/null || { apt-get update -qq && apt-get download -qq prometheus; }; } && \
	  dpkg-deb -x prometheus_*.deb root && rm -f prometheus_*.deb
	test -x $@

# --- build ------------------------------------------------------------------
# scripts/build-helper, as site.yml's build step runs it: the build flags live
# there only. It runs go build unless dist/ already has this version stamp
# and no Go file is newer, and leaves a binary whose bytes did not change as
# it was (its mtime too).
.PHONY: build
build:
	GO="$(GO)" TICKGATE_VERSION="$(VERSION)" scripts/build-helper

# What a team installs (scripts/dist): the collection (ansible-galaxy
# collection build) and the .deb (nfpm: the three static binaries, man pages
# generated from the CLI, shell completions), version from galaxy.yml.
.PHONY: dist adoption
dist: venv go-deps
	scripts/dist

# The adoption path end to end, on a bookworm and a trixie host: the
# collection installed from dist/, deployed from outside the checkout with
# tickgate_package and no Go in PATH (scripts/adoption-test).
adoption: venv go-deps
	scripts/adoption-test bookworm
	ADOPTION_REUSE_DIST=1 scripts/adoption-test trixie

# --- checks -----------------------------------------------------------------
.PHONY: test test-go test-filters lint molecule fuzz
test: deps
	@$(STEPS) \
	  "gofmt"            "test -z \"\$$(gofmt -l \$$(git ls-files '*.go' 2>/dev/null || find helper -name '*.go'))\" || { gofmt -l helper; false; }" \
	  "go vet"           "$(GO) vet ./... && $(GO) vet -tags chaos ./helper/chaos" \
	  "staticcheck"      "$(GO) run $(STATICCHECK) ./... && $(GO) run $(STATICCHECK) -tags chaos ./helper/chaos" \
	  "go test -race"    "scripts/pgtest run -- $(MAKE) --no-print-directory go-test" \
	  "fleet on PG 17"   "$(MAKE) --no-print-directory go-test-pg17" \
	  "chaos (1 round)"  "$(MAKE) --no-print-directory chaos CHAOS_ROUNDS=1" \
	  "fuzz (brief)"     "$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZ_BRIEF)" \
	  "filter tests"     "$(VENV_BIN)/python -m unittest discover -s tests/unit/plugins -v" \
	  "docs"             "$(MAKE) --no-print-directory docs-check" \
	  "cron import"      "$(MAKE) --no-print-directory cron-import-test" \
	  "ansible-test"     "scripts/ansible-test sanity units" \
	  "black"            "$(VENV_BIN)/black --check --diff $(BLACK_FLAGS) roles playbooks plugins tests" \
	  "promtool rules"   "$(MAKE) --no-print-directory rules" \
	  "yamllint"         "$(VENV_BIN)/yamllint --strict ." \
	  "ansible-lint"     "$(VENV_BIN)/ansible-lint" \
	  "molecule"         "$(MAKE) --no-print-directory molecule" \
	  "molecule (trixie)" "$(MAKE) --no-print-directory molecule-trixie" \
	  "adoption"         "$(MAKE) --no-print-directory adoption"

test-go: go-deps
	$(GO) vet ./... && $(GO) vet -tags chaos ./helper/chaos
	$(GO) run $(STATICCHECK) ./... && $(GO) run $(STATICCHECK) -tags chaos ./helper/chaos
	scripts/pgtest run -- $(MAKE) --no-print-directory go-test

# Run inside scripts/pgtest: every package, then alone the test that
# restarts the server they share.
.PHONY: go-test
go-test:
	$(GO) test -race -count=1 ./...
	set -o pipefail; $(GO) test -race -count=1 -tags pgrestart -run ServerRestart -v ./helper/fleet | grep -E '^(---|ok|FAIL|    restart_test)'

# The fleet package (and its server-restart test) against Debian 13's
# PostgreSQL 17 (scripts/pgtest's trixie root); make test-trixie adds the
# end-to-end tests and the fleet scenario there.
.PHONY: go-test-pg17
go-test-pg17: apt-deps go-deps
	PGTEST_SUITE=trixie scripts/pgtest run -- sh -c '$(GO) test -count=1 ./helper/fleet/... && \
	  $(GO) test -count=1 -tags pgrestart -run ServerRestart ./helper/fleet'

# Debian 13 beyond make test: helper/e2e against PostgreSQL 17, and the
# fleet and policies scenarios on trixie hosts (systemd 257: the watchdog,
# KillMode=mixed, catch-up, deadlines) against PostgreSQL 17.
.PHONY: test-trixie
test-trixie: venv build go-deps
	TICKGATE_TESTBED_SUITE=trixie scripts/testhost rootfs
	PGTEST_SUITE=trixie scripts/pgtest run -- $(GO) test -count=1 ./helper/e2e/
	TICKGATE_MOLECULE_SUITE=trixie PGTEST_SUITE=trixie scripts/pgtest run -- \
	  sh -c '$(VENV_BIN)/molecule test -s fleet && $(VENV_BIN)/molecule test -s policies'

# pipefail: the status of go test, not of the grep after it (without it a
# crasher failed no step).
fuzz:
	@set -eo pipefail; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t#*:}; \
	  echo "fuzz $$name ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./helper/$$pkg | grep -v '^fuzz: elapsed'; \
	done

# The shipped Prometheus alert rules: valid, and their unit tests pass.
.PHONY: rules
rules: $(PROMTOOL)
	cd monitoring && ../$(PROMTOOL) check rules tickgate.rules.yml && ../$(PROMTOOL) test rules tickgate.rules.test.yml

# docs/role-variables.md from the role's argument specs; docs-check: every
# relative link and anchor resolves, YAML examples parse, job examples pass
# the preflight's checks, and the generated page is current (tests/docs).
.PHONY: docs docs-check
docs: venv
	$(VENV_BIN)/python scripts/gen-role-docs

docs-check: venv
	$(VENV_BIN)/python -m unittest discover -s tests/docs -v

# tickgate cron import against croniter (tests/cron): the next 500 firings
# of 70 real-world crontab lines, by systemd-analyze calendar and by croniter.
.PHONY: cron-import-test
cron-import-test: venv build
	$(VENV_BIN)/python -m unittest discover -s tests/cron -v

test-filters: venv
	$(VENV_BIN)/python -m unittest discover -s tests/unit/plugins -v

lint: venv
	$(VENV_BIN)/yamllint --strict .
	$(VENV_BIN)/ansible-lint

# The fleet scenario's hosts reach scripts/pgtest's server on 127.0.0.1.
molecule: venv build
	scripts/testhost rootfs
	scripts/pgtest run -- $(VENV_BIN)/molecule test --all

# The default scenario again, on a Debian 13 host (systemd 257).
.PHONY: molecule-trixie
molecule-trixie: venv build
	TICKGATE_TESTBED_SUITE=trixie scripts/testhost rootfs
	TICKGATE_MOLECULE_SUITE=trixie scripts/pgtest run -- $(VENV_BIN)/molecule test -s default

# The fleet fault-injection suite (helper/chaos): its own clusters,
# PgBouncer, network namespace and cgroups; as root. Prints a table.
CHAOS_ROUNDS ?= 5
.PHONY: chaos
chaos: apt-deps go-deps
	set -o pipefail; TICKGATE_CHAOS_ROUNDS=$(CHAOS_ROUNDS) $(GO) test -tags chaos -count=1 -timeout 80m -v ./helper/chaos \
	  | grep --line-buffered -Ev '^=== (RUN|PAUSE|CONT)'

# --- benchmarks ---------------------------------------------------------------
.PHONY: bench
bench: deps build
	set -o pipefail; scripts/pgtest run -- bash -c "$(GO) test -run '^$$' -bench 'RunVsFlock|FleetTick' -benchtime 300x ./helper/e2e/ && \
	  $(GO) test -run '^$$' -bench 'StatusJSON1000|DrainReaction' -benchtime 20x ./helper/e2e/ && \
	  $(GO) test -run '^$$' -bench 'FleetLockRace200' -benchtime 1x ./helper/e2e/" | grep -E '^(Benchmark|ok|FAIL)|breakdown'
	set -o pipefail; $(GO) test -tags chaos -run '^$$' -bench 'FleetLockRace500' -benchtime 1x ./helper/chaos | grep -E '^(Benchmark|ok|FAIL)'
	scripts/bench-tick
	scripts/pgtest run -- scripts/bench-deploy
	scripts/pgtest run -- scripts/bench-fleet-gate

# --- demo ---------------------------------------------------------------------
.PHONY: demo demo-fleet demo-clean
demo: deps build
	scripts/demo up

demo-fleet: deps build
	scripts/demo up-fleet

demo-clean:
	scripts/demo down
