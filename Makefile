# sseedge: `make test` is the test command CI runs (.ci/run); `make run` starts one node.
GO       ?= go
FUZZTIME ?= 50000x

# Fuzz targets run briefly on every test run: package:target. FUZZTIME is a count of executions, not a
# duration: a duration-based -fuzztime fails now and then with a bare "context deadline exceeded" at its
# end on a busy machine (a race in Go's fuzz coordinator, go.dev/issue/75804).
FUZZ_TARGETS = edge:FuzzParseHead api:FuzzAdminGuard transport:FuzzParseGrant transport:FuzzParseSubsChange fanout:FuzzFrame fanout:FuzzParseTopic fanout:FuzzCursor auth:FuzzStreamToken netguard:FuzzParsePolicy api:FuzzInvokeBody mcp:FuzzParseMessage grip:FuzzParseInstruct grip:FuzzParsePublish

.PHONY: test vet unit fuzz run build bench

test: vet unit fuzz chart

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) mod tidy -diff

unit:
	$(GO) test -race -count=1 -timeout 10m ./...

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./$$pkg; \
	done

# The Helm chart's tests, in deploy/'s own module (helm is built there at the version its go.mod pins).
# -count=1: helm and the edge read files the test cache cannot see.
chart:
	cd deploy && $(GO) test -count=1 ./...

build:
	$(GO) build -o bin/edge ./cmd/edge

run:
	$(GO) run ./cmd/edge

# A short load test of the net/http baseline and sseedge in the same run; prints the comparison table.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./fanout/ ./edge/
	./loadtest/run.sh
