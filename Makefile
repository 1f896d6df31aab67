# sidpin — see README.md. The two commands: `make demo` and `make test`.
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: all build demo test vet lint fuzz bench bench-proxy e2e-deps docker clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# npm packages of the e2e suite; the demo page loads the socket.io-client browser bundle from here.
e2e-deps:
	cd e2e && npm ci --no-audit --no-fund --loglevel=error

# Three chat nodes behind sidpin on the embedded memory store; open the printed URL.
demo: build e2e-deps
	./scripts/demo.sh

# Every check and test, against a throwaway redis-server started (and stopped) by the script.
test:
	./scripts/test.sh

vet:
	$(GO) vet ./...

lint: vet
	staticcheck ./...

# Short fuzzing runs of every fuzz target (the seed corpora run in `make test` anyway).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Whole-process comparison: direct vs sidpin vs HAProxy vs nginx (see bench/README.md; ~6 min).
bench-proxy: build
	bench/run.sh

docker:
	docker build -t sidpin:$(VERSION) .

clean:
	rm -rf $(BIN)
