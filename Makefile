# svcdisc build and test entry points. `make test` runs scripts/test.sh, as CI does.
GO ?= go
# go.mod needs Go 1.27.3; the go command fetches it from the module proxy.
export GOTOOLCHAIN ?= go1.27.3
BENCHTIME ?= 1s

.PHONY: all build test bench membench run clean dnsbench soak scalebench

all: build

build:
	$(GO) build -o bin/svcdisc ./cmd/svcdisc

# The whole test suite; the same as CI's .ci/run.
test:
	./scripts/test.sh

# Benchmarks of the answer path and of updates; never part of `make test`.
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./resolver ./zones ./envgen

# svcdisc vs CoreDNS vs Knot with dnsperf, one core each (about 15 minutes).
dnsbench:
	hack/dnsbench.sh

# Load and soak: 600 s at 70% of svcdisc's maximum with churn (SOAK_ARGS='-d 20' for a short run).
soak:
	hack/soak.sh $(SOAK_ARGS)

# Resident memory with 10,000 Services and 100,000 endpoints (manifests).
membench:
	$(GO) run ./hack/membench -source manifests

# svcdisc vs CoreDNS through a real API server at 10k, 30k and 100k Services (about an
# hour on 2 cores; SCALEBENCH_ARGS='-steps 2000 -burst-duration 10s' for a short run).
scalebench:
	$(GO) run ./hack/scalebench $(SCALEBENCH_ARGS)

run:
	$(GO) run ./cmd/svcdisc serve --manifests examples/ --dns-addr 127.0.0.1:1053

clean:
	rm -rf bin
