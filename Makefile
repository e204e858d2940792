# eipclaim. `make test` is the one test command (CI runs it too).

# Build with the toolchain go.mod names (a patched Go: govulncheck finds
# standard-library vulnerabilities in older ones), even where the machine's
# go env says GOTOOLCHAIN=local; Go fetches it from the module proxy.
export GOTOOLCHAIN = auto

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
FUZZTIME ?= 60s
# Every eipclaim binary: lambda.norpc leaves out aws-lambda-go's RPC mode
# (the retired go1.x runtime), whose net/rpc brings html/template and turns
# the linker's dead-code elimination off (57 MB instead of 17).
GOTAGS ?= lambda.norpc

.PHONY: test tools fuzz build demo lambda

## test: lint, build for Windows, race tests with real emulators, short fuzz, govulncheck
test:
	bash scripts/test.sh

## tools: install the emulators and linters the tests need (idempotent)
tools:
	bash scripts/tools.sh

## fuzz: run every fuzz target for FUZZTIME (default 60s) each
fuzz:
	FUZZALL=1 FUZZTIME=$(FUZZTIME) bash scripts/test.sh fuzz

## build: static release binary in dist/
build:
	mkdir -p dist
	CGO_ENABLED=0 go build -tags $(GOTAGS) -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o dist/ ./cmd/eipclaim

## lambda: the off-box controller's code, dist/eipclaim-lambda-arm64.zip and -amd64.zip (bootstrap, provided.al2023)
lambda:
	mkdir -p dist
	for arch in arm64 amd64; do \
		rm -rf dist/lambda-$$arch && mkdir -p dist/lambda-$$arch && \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch go build -tags $(GOTAGS) -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o dist/lambda-$$arch/bootstrap ./cmd/eipclaim && \
		rm -f dist/eipclaim-lambda-$$arch.zip && (cd dist/lambda-$$arch && zip -q -X ../eipclaim-lambda-$$arch.zip bootstrap) || exit 1; \
	done

## demo: the end-to-end demonstration against the emulators (installs only what it starts first)
demo:
	bash scripts/tools.sh demo
	go run ./tools/demo

-include release.mk
-include proof.mk
