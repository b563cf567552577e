# pgpoolx developer targets. `make test` is what CI runs (.ci/run).

GO ?= go
FUZZTIME ?= 10s

.PHONY: all build demo test bench bench-quick fuzz-short clean

all: build

build:
	$(GO) build -o bin/pgpoolx ./cmd/pgpoolx

# pgpoolx in front of a throwaway PostgreSQL; Ctrl-C removes it all.
# Pass flags with DEMOFLAGS, e.g. `make demo DEMOFLAGS="-port 7432"`.
demo: build
	$(GO) build -o bin/pgpoolx-demo ./cmd/pgpoolx-demo
	bin/pgpoolx-demo $(DEMOFLAGS)

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

# pgpoolx against PgBouncer and PostgreSQL alone under pgbench (bench/):
# a markdown table on stdout. Pass flags with BENCHFLAGS, e.g.
# `make bench BENCHFLAGS="-out results.md"`. bench takes about twelve minutes,
# bench-quick under two (it is CI's smoke check).
bench: build
	$(GO) run ./bench -pgpoolx bin/pgpoolx $(BENCHFLAGS)

bench-quick: build
	$(GO) run ./bench -quick -pgpoolx bin/pgpoolx $(BENCHFLAGS)

# Every Fuzz target in the module for FUZZTIME each (go test -fuzz takes one
# target at a time).
fuzz-short:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

clean:
	rm -rf bin
