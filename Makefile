# Deskside — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO       ?= go
BENCH_RUNS ?= 3
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BIN      := bin
# Go test timeout for the whole suite (CI must stay under 30 minutes).
TEST_TIMEOUT ?= 20m
# Debian packages that building and running Deskside need (cgo and libvpx for
# the agent's VP8 encoder); `make run` and `make build` install the missing ones.
RUN_PACKAGES ?= gcc libc6-dev pkg-config libvpx-dev
# Debian packages only the tests need (browsers, a virtual X server, input and
# clipboard tools, certificate tools, fonts for screenshots, coturn to compare
# TURN with, nftables for the fleet simulator's blackhole); `make test` adds them.
TEST_PACKAGES ?= chromium firefox-esr xvfb xfonts-base xdotool xclip libnss3-tools fonts-dejavu-core zenity rpm coturn nftables
# Debian packages `make msi` builds the Windows MSI with (wixl, msiinfo,
# msibuild, osslsigncode); the tests need them too.
MSI_PACKAGES ?= wixl msitools osslsigncode
# make msi: auto signs when DESKSIDE_SIGN_CERT and DESKSIDE_SIGN_KEY are set,
# required fails without them (release builds), off never signs.
MSI_SIGN ?= auto
# Debian packages the local agent of `make run` asks its user with (the consent
# prompt, the notice of unattended sessions); endpoints need them too.
AGENT_PACKAGES ?= zenity libnotify-bin xfonts-base
# Where `make run` keeps its relay, agent, admin password and CLI session between runs.
DEV_DATA ?= .deskside-dev

# install_debs(packages, what they are for): install the missing Debian packages.
define install_debs
	@missing=""; for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "==> installing the Debian packages $(2):$$missing"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else echo "missing Debian packages $(2):$$missing — install them with: apt-get install$$missing"; exit 1; fi; \
	fi
endef

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps-go
deps-go:
	@command -v $(GO) >/dev/null || { echo "Go is required: install Go 1.26 from https://go.dev/dl/"; exit 1; }
	@$(GO) version | grep -Eq 'go1\.(2[6-9]|[3-9][0-9])' || { echo "Go 1.26 or newer is required, found: $$($(GO) version)"; exit 1; }

.PHONY: deps-run
deps-run: deps-go ## Check Go and install the Debian packages building and running need.
	$(call install_debs,$(RUN_PACKAGES),that building and running Deskside need)

.PHONY: deps-agent
deps-agent:
	$(call install_debs,$(AGENT_PACKAGES),that the agent asks its user with)

.PHONY: deps-msi
deps-msi:
	$(call install_debs,$(MSI_PACKAGES),that building the Windows MSI needs)

.PHONY: deps
deps: deps-run deps-msi ## Also install the Debian packages the tests need (browsers, Xvfb, xdotool, msitools).
	$(call install_debs,$(TEST_PACKAGES),that only the tests need)

.PHONY: build
build: deps-run ## Build deskside-relay, deskside-agent, deskside and deskside-tray into bin/.
	@mkdir -p $(BIN)
	@echo "==> downloading Go modules (the first time takes a few minutes)"
	@$(GO) mod download
	@echo "==> building into $(BIN)/ (the first build compiles every dependency and takes minutes; later ones seconds)"
	@echo "    deskside-relay";  $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/deskside-relay ./relay/cmd/deskside-relay
	@echo "    deskside-agent";  $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/deskside-agent ./agent/cmd/deskside-agent
	@echo "    deskside";        $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/deskside ./console/cmd/deskside
	@echo "    deskside-tray";   $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/deskside-tray ./agent/cmd/deskside-tray
	@echo "    deskside-dev";    $(GO) build -trimpath -o $(BIN)/deskside-dev ./internal/cmd/deskside-dev

.PHONY: fleetsim
fleetsim: deps-run ## Build bin/deskside-fleetsim, the fleet simulator (docs/fleetsim.md), and bin/deskside-relay beside it.
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/deskside-relay ./relay/cmd/deskside-relay
	$(GO) build -trimpath -o $(BIN)/deskside-fleetsim ./agent/cmd/deskside-fleetsim

.PHONY: packages
packages: deps-run ## Build the .deb and .rpm of deskside-agent and deskside-relay, their SBOMs and SHA256SUMS into dist/ (RELEASE_KEY=FP: agents pin that release key at install).
	$(GO) run ./installer/cmd/deskside-package -out dist -release-key '$(RELEASE_KEY)'

.PHONY: msi
msi: deps-go deps-msi ## Build bin/deskside-agent.msi for Windows (signed when DESKSIDE_SIGN_CERT/KEY are set; MSI_SIGN=required for releases).
	@echo "==> building the Windows agent MSI into $(BIN)/ (cross-compiles the agent and the tray; the first time takes minutes)"
	$(GO) run ./installer/msi/cmd/deskside-msi -out $(BIN) -version '$(VERSION)' -sign $(MSI_SIGN)

.PHONY: run
run: build deps-agent ## Start a relay and a local agent, sign the CLI in (data kept in .deskside-dev); Ctrl-C stops all.
	@$(BIN)/deskside-dev --bin $(BIN) --data $(DEV_DATA)

.PHONY: run-clean
run-clean: build deps-agent ## Like run, but delete .deskside-dev first (new admin password, no devices).
	@$(BIN)/deskside-dev --bin $(BIN) --data $(DEV_DATA) --fresh

.PHONY: test
test: deps ## Run every test (with -race on the concurrent packages). CI=true makes service-backed tests mandatory.
	$(GO) test -timeout $(TEST_TIMEOUT) -count=1 ./...
	@# Not -short: the race pass must include the NATS and PostgreSQL suites, which -short skips.
	$(GO) test -timeout $(TEST_TIMEOUT) -count=1 -race ./relay/... ./agent/link/... ./agent/spool/...

.PHONY: test-short
test-short: ## Fast inner loop: every test but the Xvfb, browser, PostgreSQL and NATS suites (go test -short).
	$(GO) test -count=1 -short ./...

.PHONY: bench
bench: deps ## Run the benchmarks (each BENCH_RUNS times, default 3) and print median, spread, unit and target per figure.
	$(GO) run ./internal/benchtable -runs $(BENCH_RUNS)

.PHONY: proto
proto: ## Regenerate proto/gen from the .proto files (byte for byte reproducible).
	cd proto && $(GO) tool buf generate

.PHONY: lint
lint: ## buf lint and staticcheck.
	cd proto && $(GO) tool buf lint
	$(GO) tool staticcheck ./...

.PHONY: check
check: ## gofmt, vet, lint, buf breaking, and windows/darwin builds of agent and CLI.
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(MAKE) --no-print-directory lint
	@if git rev-parse --verify -q HEAD:proto/deskside >/dev/null; then \
		cd proto && $(GO) tool buf breaking --against '../.git#ref=HEAD,subdir=proto'; \
	else echo "buf breaking: no committed proto/ yet, skipped"; fi
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./agent/... ./console/...
	GOOS=darwin GOARCH=arm64 $(GO) build -o /dev/null ./agent/... ./console/...
	GOOS=windows GOARCH=amd64 $(GO) vet ./agent/... ./console/...
	GOOS=darwin GOARCH=arm64 $(GO) vet ./agent/... ./console/...

.PHONY: clean
clean: ## Remove build output.
	rm -rf $(BIN) dist

.PHONY: web
web: ## Build the web console into console/web/dist (npm ci, generate TS, type-check, test, bundle).
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "Node.js 20 or newer and npm are required to build the web console: install them (Debian: apt-get install nodejs npm) or from https://nodejs.org/"; exit 1; }
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || { echo "Node.js 20 or newer is required, found $$(node --version)"; exit 1; }
	cd console/web && npm ci --no-audit --no-fund --ignore-scripts
	cd proto && $(GO) tool buf generate --template buf.gen.web.yaml
	cd console/web && node_modules/.bin/tsc --noEmit -p .
	cd console/web && node test/run.mjs
	cd console/web && node build.mjs

.PHONY: screenshots
screenshots: deps ## Refresh docs/screenshots from the browser tests (real relay, agent and Chromium).
	@mkdir -p docs/screenshots
	DESKSIDE_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run 'TestConsoleWithRealAgent|TestReleasesPage|TestAddDevices' ./console/webtest
	DESKSIDE_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run 'TestGetHelpPage|TestConsentPage' ./agent/tray
	DESKSIDE_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run 'TestConsent$$/allow' ./agent/desktop
