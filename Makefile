# dzconnect developer tasks. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO          ?= go
BUF         := $(GO) tool -modfile=tools/proto/go.mod buf
SQLC        := $(GO) tool -modfile=tools/sqlc/go.mod sqlc
GOLANGCI    := $(GO) tool -modfile=tools/lint/go.mod golangci-lint
# Redocly CLI, the independent OpenAPI linter: pinned in tools/redocly/package-lock.json,
# installed by `npm ci` on first use (make check-openapi). No telemetry, no update check.
REDOCLY     := tools/redocly/node_modules/.bin/redocly
OPENAPI     := api/openapi/dzconnect.swagger.json
TEST_DIR    := .run/test
DEV_DIR     := .run/dev
GOTESTFLAGS ?= -race -count=1 -timeout 20m
PKGS        ?= ./...
BENCH       ?= .

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/dzconnect, bin/dzctl and bin/msftsim
	$(GO) build -o bin/ ./cmd/...

.PHONY: generate
generate: ## regenerate API code, OpenAPI spec and its Go REST client, SQL query code and docs/configuration.md
	rm -rf api/dzconnect api/openapi/*.json api/openapi/restclient internal/postgres/query
	$(BUF) generate
	@# A Go client generated from the OpenAPI document alone (oapi-codegen, tools/openapi);
	@# internal/e2e/openapi_client_test.go drives a running server through it.
	mkdir -p api/openapi/restclient
	$(GO) -C tools/openapi run ./restclient-gen ../../$(OPENAPI) restclient ../../api/openapi/restclient/restclient.gen.go
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

$(REDOCLY): tools/redocly/package.json tools/redocly/package-lock.json
	npm ci --prefix tools/redocly --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: check-openapi
check-openapi: $(REDOCLY) ## lint the OpenAPI document with Redocly's recommended rules: fails on any error
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_COLOR=1 \
	  $(REDOCLY) lint --config tools/redocly/redocly.yaml --format=summary $(OPENAPI)

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
bench: ## run the benchmarks and print their figures (BENCH=regexp narrows them)
	trap 'bash scripts/services.sh down $(TEST_DIR)' EXIT; \
	  bash scripts/services.sh up $(TEST_DIR); \
	  source $(TEST_DIR)/env; \
	  $(GO) test -run '^$$' -bench '$(BENCH)' -benchtime 2s $(PKGS)

.PHONY: dev
dev: build ## start Postgres, Vault, msftsim and dzconnect with a demo organization; print examples
	bash scripts/dev.sh up

.PHONY: dev-down
dev-down: ## stop everything `make dev` started
	bash scripts/dev.sh down

.PHONY: ci
ci: lint check-generate check-openapi check-deploy test ## what CI runs
