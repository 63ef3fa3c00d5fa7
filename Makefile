# dzconnect developer tasks. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO          ?= go
BUF         := $(GO) tool -modfile=tools/proto/go.mod buf
SQLC        := $(GO) tool -modfile=tools/sqlc/go.mod sqlc
GOLANGCI    := $(GO) tool -modfile=tools/lint/go.mod golangci-lint
TEST_DIR    := .run/test
DEV_DIR     := .run/dev
GOTESTFLAGS ?= -race -count=1 -timeout 20m
PKGS        ?= ./...

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/dzconnect, bin/dzctl and bin/msftsim
	$(GO) build -o bin/ ./cmd/...

.PHONY: generate
generate: ## regenerate API code, OpenAPI spec, SQL query code and docs/configuration.md
	rm -rf api/dzconnect api/openapi/*.json internal/postgres/query
	$(BUF) generate
	$(SQLC) generate
	$(GO) run ./cmd/dzconnect config-reference > docs/configuration.md

.PHONY: check-generate
check-generate: generate ## fail when generated files differ from the committed ones
	@git add -N api docs internal/postgres/query >/dev/null 2>&1 || true
	@if ! git diff --quiet -- api docs/configuration.md internal/postgres/query; then \
	  echo "generated files are stale: run 'make generate' and commit" >&2; \
	  git --no-pager diff --stat -- api docs internal/postgres/query; exit 1; fi

.PHONY: lint
lint: ## buf lint, gofmt, go vet, golangci-lint (.golangci.yml)
	$(BUF) lint
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:" >&2; echo "$$out" >&2; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI) run ./...

BREAKING_AGAINST ?= .git\#branch=main
.PHONY: breaking
breaking: ## buf breaking-change check against BREAKING_AGAINST (default: main)
	$(BUF) breaking --against '$(BREAKING_AGAINST)'

.PHONY: check-deploy
check-deploy: ## lint, render and validate the Helm chart and the compose file (Helm built once per machine)
	bash scripts/check-deploy.sh

.PHONY: services-up
services-up: ## start the test Postgres and Vault (.run/test)
	bash scripts/services.sh up $(TEST_DIR)

.PHONY: services-down
services-down: ## stop the test Postgres and Vault
	bash scripts/services.sh down $(TEST_DIR)

.PHONY: test
test: ## run every test (starts and stops Postgres and Vault itself)
	trap 'bash scripts/services.sh down $(TEST_DIR)' EXIT; \
	  bash scripts/services.sh up $(TEST_DIR); \
	  source $(TEST_DIR)/env; \
	  $(GO) test $(GOTESTFLAGS) $(PKGS)

.PHONY: bench
bench: ## run the benchmarks and print their figures
	trap 'bash scripts/services.sh down $(TEST_DIR)' EXIT; \
	  bash scripts/services.sh up $(TEST_DIR); \
	  source $(TEST_DIR)/env; \
	  $(GO) test -run '^$$' -bench . -benchtime 2s $(PKGS)

.PHONY: dev
dev: build ## start Postgres, Vault, msftsim and dzconnect with a demo organization; print examples
	bash scripts/dev.sh up

.PHONY: dev-down
dev-down: ## stop everything `make dev` started
	bash scripts/dev.sh down

.PHONY: ci
ci: lint check-generate check-deploy test ## what CI runs
