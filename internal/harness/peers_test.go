package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A test that needs a peer (CoreDNS, an API server) runs with it, skips
// without it, and fails without it where the peer is required (CI).
func TestNeedPeerRunsSkipsOrFails(t *testing.T) {
	coredns := filepath.Join(t.TempDir(), "coredns")
	if err := os.WriteFile(coredns, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		env  []string
		want string // "run", "skip" or "fail"
	}{
		{"kube present", []string{"SVCDISC_TEST_KUBECONFIG=/k"}, "run"},
		{"kube absent", []string{"SVCDISC_TEST_KUBECONFIG="}, "skip"},
		{"kube absent and required", []string{"SVCDISC_TEST_KUBECONFIG=", "SVCDISC_REQUIRE_KUBE=1"}, "fail"},
		{"testenv script present", []string{"SVCDISC_TESTENV_SCRIPT=/t"}, "run"},
		{"testenv script absent", []string{"SVCDISC_TESTENV_SCRIPT="}, "skip"},
		{"testenv script absent and required", []string{"SVCDISC_TESTENV_SCRIPT=", "SVCDISC_REQUIRE_KUBE=1"}, "fail"},
		{"coredns present", []string{"SVCDISC_COREDNS=" + coredns}, "run"},
		{"coredns absent", []string{"SVCDISC_COREDNS=/nonexistent/coredns"}, "skip"},
		{"coredns absent and required", []string{"SVCDISC_COREDNS=/nonexistent/coredns", "SVCDISC_REQUIRE_COREDNS=1"}, "fail"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			peer, _, _ := strings.Cut(tt.name, " ")
			cmd := exec.Command(os.Args[0], "-test.run=^TestNeedPeerChild$", "-test.v")
			cmd.Env = append(os.Environ(), "SVCDISC_REQUIRE_KUBE=", "SVCDISC_REQUIRE_COREDNS=", "HARNESS_PEER="+peer)
			cmd.Env = append(cmd.Env, tt.env...)
			out, err := cmd.CombinedOutput()
			got := "run"
			switch {
			case err != nil:
				got = "fail"
			case strings.Contains(string(out), "--- SKIP"):
				got = "skip"
			case !strings.Contains(string(out), "peer at "):
				t.Fatalf("the child did not run:\n%s", out)
			}
			if got != tt.want {
				t.Errorf("%s, want %s:\n%s", got, tt.want, out)
			}
		})
	}
}

// TestNeedPeerChild is run by TestNeedPeerRunsSkipsOrFails in a process of
// its own, since a failing gate fails the test that calls it.
func TestNeedPeerChild(t *testing.T) {
	switch os.Getenv("HARNESS_PEER") {
	case "kube":
		t.Log("peer at " + NeedKube(t))
	case "testenv":
		t.Log("peer at " + NeedTestenvScript(t))
	case "coredns":
		t.Log("peer at " + NeedCoreDNS(t))
	default:
		t.Skip("run by TestNeedPeerRunsSkipsOrFails")
	}
}
