#!/usr/bin/env bash
# The whole svcdisc test suite, what CI (.ci/run) runs:
#   - gofmt and go vet;
#   - every test with the race detector, including the integration tests
#     against a real kube-apiserver + etcd that hack/testenv.sh builds (first
#     run: ~12-17 min on 2 cores; the binaries are cached in
#     ~/.cache/svcdisc-testenv), starts on loopback, and stops afterwards;
#   - the forward tests against a real knotd; knot, curl and openssl are
#     installed with apt-get when missing;
#   - hack/clients: glibc, musl and Go's resolver against svcdisc in a private
#     network namespace (needs root; musl-tools and iproute2 installed when
#     missing), and side by side with CoreDNS with autopath @kubernetes
#     (TestAutopathSideBySideWithCoreDNS: the API server and the CoreDNS
#     build below as well);
#   - each fuzz target for a few seconds (-fuzztime durations again: Go 1.27
#     fixed the spurious "context deadline exceeded" of golang/go#75804 that
#     made Go 1.26 runs use counts).
# SVCDISC_SKIP_KUBE=1 skips the API server (its tests then skip, saying so).
set -euo pipefail
cd "$(dirname "$0")/.."
# go.mod needs Go 1.27.3 (a machine starts on its own Go, which ignores go.mod's
# toolchain): the go command fetches it from the module proxy, about 10 s once.
export GOTOOLCHAIN=go1.27.3

# Debian packages the tests need: knot (knotd, the real upstream DNS server
# of the forward tests), curl and openssl for hack/testenv.sh, and promtool.
missing=()
command -v knotd >/dev/null || [ -x /usr/sbin/knotd ] || missing+=(knot)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
# promtool (Debian's prometheus package) checks deploy/monitoring's rules.
command -v promtool >/dev/null || missing+=(prometheus)
# hack/clients (the real-client test): musl-gcc compiles its musl client, ip
# brings up loopback in its network namespace; unshare, nsenter and mount
# (util-linux) and getent (libc-bin) are in every Debian.
command -v musl-gcc >/dev/null || missing+=(musl-tools)
command -v ip >/dev/null || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
  echo "--- installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export SVCDISC_REQUIRE_KNOT=1 SVCDISC_REQUIRE_PROMTOOL=1 SVCDISC_REQUIRE_CLIENTS=1

echo "--- gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt needed:"; echo "$unformatted"; exit 1
fi
echo "--- go vet"
go vet ./...

if [ "${SVCDISC_SKIP_KUBE:-}" != 1 ]; then
  echo "--- kube-apiserver + etcd"
  export SVCDISC_TESTENV_DIR=${SVCDISC_TESTENV_DIR:-$(mktemp -d /tmp/svcdisc-testenv.XXXXXX)}
  hack/testenv.sh build
  trap 'hack/testenv.sh stop || true' EXIT
  hack/testenv.sh start
  set -a
  # shellcheck disable=SC1091
  . "$SVCDISC_TESTENV_DIR/env"
  set +a
  export SVCDISC_REQUIRE_KUBE=1
  export SVCDISC_TESTENV_SCRIPT="$PWD/hack/testenv.sh"
fi

# The tests that stop or kill the shared kube-apiserver or etcd run on their
# own afterwards: packages are tested in parallel, and another package's API
# tests must not meet the outage.
disruptive='^(TestKubeAPIServerRestart|TestFaultKube.*)$'
# CoreDNS v1.14.7 for hack/diffcoredns (TestSameAnswersAsCoreDNS, same Corefile and
# queries against CoreDNS and svcdisc) and hack/clients (TestAutopathSideBySideWithCoreDNS):
# built once from the Go module proxy (~7-15 min
# on 2 cores), cached in ~/.cache/svcdisc-bench.
echo "--- CoreDNS for hack/diffcoredns"
hack/diffcoredns.sh build
export SVCDISC_REQUIRE_COREDNS=1
echo "--- go test -race"
go test -race -count=1 -skip="$disruptive" ./...
echo "--- go test -race: API server and etcd restarts"
go test -race -count=1 -run="$disruptive" ./cmd/svcdisc
echo "--- fuzz"
go test -run='^$' -fuzz='^FuzzHandler$' -fuzztime=10s ./resolver
go test -run='^$' -fuzz='^FuzzParseManifests$' -fuzztime=10s ./zones
go test -run='^$' -fuzz='^FuzzParse$' -fuzztime=10s ./config
go test -run='^$' -fuzz='^FuzzParseRewrite$' -fuzztime=5s ./config
go test -run='^$' -fuzz='^FuzzWebhook$' -fuzztime=10s ./envgen
# A count for minimizing too: a large new input can otherwise take the default 60 s.
go test -run='^$' -fuzz='^FuzzPatchApplies$' -fuzztime=10s -fuzzminimizetime=500x ./envgen

# govulncheck, pinned, with a database built from golang.org/x/vulndb (served by the
# module proxy) where vuln.go.dev cannot be reached; any reachable vulnerability fails
# the suite, in a module or in the toolchain's standard library (hack/vulncheck.sh).
echo "--- govulncheck"
hack/vulncheck.sh

# A short load and soak run of svcdisc (hack/soak.sh, about a minute): 20 s at 70% of
# the maximum rate with EndpointSlice churn, then thresholds on lost queries, wrong
# response codes, and goroutine and RSS growth. The loss limit is looser than the
# script's default (0.1%), a margin for a CI machine whose cores other work shares.
echo "--- soak"
if ! command -v dnsperf >/dev/null; then
  echo "--- installing dnsperf"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsperf >/dev/null
fi
hack/soak.sh -d 20 -m 5 -L 2
echo "--- ok"
