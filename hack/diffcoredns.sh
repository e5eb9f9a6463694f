#!/usr/bin/env bash
# hack/diffcoredns.sh - svcdisc vs a real CoreDNS: the same Corefile, the same queries,
# the same Kubernetes objects in a real kube-apiserver; the answers compared
# (hack/diffcoredns/README.md).
#
#   hack/diffcoredns.sh build            build CoreDNS into the cache if missing, and exit
#   hack/diffcoredns.sh [GO TEST ARGS]   also run TestSameAnswersAsCoreDNS (-v by default)
#
# CoreDNS is built once from the Go module proxy with go install into
# ~/.cache/svcdisc-bench/coredns-$COREDNS_VERSION/ (SVCDISC_BENCH_CACHE moves it), as
# hack/dnsbench.sh does. The API server is $SVCDISC_TEST_KUBECONFIG's when that is set;
# otherwise the script starts one with hack/testenv.sh in a temporary state dir and
# stops it afterwards. Examples:
#
#   hack/diffcoredns.sh
#   hack/diffcoredns.sh -run 'TestSameAnswersAsCoreDNS/kubeadm'
#   go run ./hack/diffcoredns -case kubeadm -v    # by hand, with SVCDISC_TEST_KUBECONFIG set
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '[diffcoredns] %s\n' "$*" >&2; }
die() { printf '[diffcoredns] ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck source=hack/lib.sh
. "$REPO/hack/lib.sh"

case ${1:-} in
  -h | --help | help)
    sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
command -v go >/dev/null || die "go is not on PATH"
ensure_coredns
log "CoreDNS: $COREDNS"
[[ ${1:-} == build ]] && exit 0

cd "$REPO"
if [[ -z ${SVCDISC_TEST_KUBECONFIG:-} ]]; then
  export SVCDISC_TESTENV_DIR
  SVCDISC_TESTENV_DIR=$(mktemp -d /tmp/svcdisc-diffcoredns-testenv.XXXXXX)
  # The state dir (logs) stays when the test fails.
  trap 'rc=$?; hack/testenv.sh stop >/dev/null || true; ((rc)) || rm -rf "$SVCDISC_TESTENV_DIR"' EXIT
  hack/testenv.sh start >/dev/null
  set -a
  # shellcheck source=/dev/null
  . "$SVCDISC_TESTENV_DIR/env"
  set +a
fi
export SVCDISC_COREDNS=$COREDNS SVCDISC_REQUIRE_COREDNS=1 SVCDISC_REQUIRE_KUBE=1
args=("$@")
((${#args[@]})) || args=(-v)
go test -count=1 -run '^TestSameAnswersAsCoreDNS$' "${args[@]}" ./hack/diffcoredns
