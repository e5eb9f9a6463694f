package harness

import (
	"os"
	"path/filepath"
	"testing"
)

// CoreDNSVersion is the CoreDNS release the harnesses compare against
// (hack/lib.sh's COREDNS_VERSION).
const CoreDNSVersion = "v1.14.7"

// CoreDNSBinary is where hack/lib.sh's ensure_coredns installs CoreDNS:
// under $SVCDISC_BENCH_CACHE, else ~/.cache/svcdisc-bench.
func CoreDNSBinary() string {
	cache := os.Getenv("SVCDISC_BENCH_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "svcdisc-bench")
	}
	return filepath.Join(cache, "coredns-"+CoreDNSVersion, "coredns")
}

// NeedCoreDNS returns the CoreDNS binary a test runs against
// ($SVCDISC_COREDNS, else CoreDNSBinary). Without one the test is skipped,
// saying how to get it; with SVCDISC_REQUIRE_COREDNS=1 (CI) it fails.
func NeedCoreDNS(t testing.TB) string {
	t.Helper()
	path := os.Getenv("SVCDISC_COREDNS")
	if path == "" {
		path = CoreDNSBinary()
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("SVCDISC_REQUIRE_COREDNS") == "1" {
			t.Fatalf("SVCDISC_REQUIRE_COREDNS=1 but there is no CoreDNS at %s (hack/diffcoredns.sh build makes it)", path)
		}
		t.Skipf("no CoreDNS %s at %s: run hack/diffcoredns.sh build, or set SVCDISC_COREDNS, to run this test", CoreDNSVersion, path)
	}
	return path
}

// NeedKube returns the kubeconfig of the test API server
// ($SVCDISC_TEST_KUBECONFIG, from hack/testenv.sh). Without one the test is
// skipped, saying how to start it; with SVCDISC_REQUIRE_KUBE=1 (CI) it
// fails.
func NeedKube(t testing.TB) string {
	t.Helper()
	return need(t, "SVCDISC_TEST_KUBECONFIG", "SVCDISC_REQUIRE_KUBE",
		"no kube-apiserver: run hack/testenv.sh start and set SVCDISC_TEST_KUBECONFIG to run this test")
}

// NeedTestenvScript returns hack/testenv.sh as the test environment names it
// ($SVCDISC_TESTENV_SCRIPT), for tests that stop and start the API server or
// etcd; skipped or failed as NeedKube.
func NeedTestenvScript(t testing.TB) string {
	t.Helper()
	return need(t, "SVCDISC_TESTENV_SCRIPT", "SVCDISC_REQUIRE_KUBE",
		"restarting the API server or etcd needs SVCDISC_TESTENV_SCRIPT (hack/testenv.sh)")
}

// need returns $name, or skips the test with why, or fails it when
// $require is 1.
func need(t testing.TB, name, require, why string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv(require) == "1" {
			t.Fatalf("%s=1 but %s is not set", require, name)
		}
		t.Skip(why)
	}
	return v
}
