// Command diffcoredns runs the same Corefile and the same queries against a
// real CoreDNS and against svcdisc, over the same Kubernetes objects in a
// real kube-apiserver, and compares the answers. The cases are the files
// testdata/*.case (the format is in README.md); TestSameAnswersAsCoreDNS
// runs them in CI.
//
//	go run ./hack/diffcoredns [-coredns PATH] [-svcdisc PATH] [-kubeconfig PATH] [-case NAME] [-v]
//
// Without -coredns, the binary hack/diffcoredns.sh builds into
// ~/.cache/svcdisc-bench/coredns-v1.14.7 is used; without -svcdisc,
// ./cmd/svcdisc is built; without -kubeconfig, $SVCDISC_TEST_KUBECONFIG
// (hack/testenv.sh's env file), then $KUBECONFIG. The exit status is 1 when
// any answer differs beyond the differences a case lists.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/svcdisc/svcdisc/internal/harness"
)

// buildSvcdisc builds ./cmd/svcdisc into dir.
func buildSvcdisc(dir string) (string, error) {
	out := filepath.Join(dir, "svcdisc")
	cmd := exec.Command("go", "build", "-o", out, "github.com/svcdisc/svcdisc/cmd/svcdisc")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/svcdisc: %v\n%s", err, b)
	}
	return out, nil
}

func main() {
	coredns := flag.String("coredns", "", "CoreDNS `binary` (default: "+harness.CoreDNSBinary()+")")
	svcdisc := flag.String("svcdisc", "", "svcdisc `binary` (default: build ./cmd/svcdisc)")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig `file` of the API server (default: $SVCDISC_TEST_KUBECONFIG, then $KUBECONFIG)")
	cases := flag.String("cases", "", "`directory` of *.case files (default: hack/diffcoredns/testdata or ./testdata)")
	only := flag.String("case", "", "run only the case `NAME` (comma-separated names allowed)")
	verbose := flag.Bool("v", false, "print both answers of every query, and the progress")
	keep := flag.Bool("keep", false, "keep the work directory (Corefiles, logs)")
	flag.Parse()
	if flag.NArg() > 0 {
		fail("unexpected argument %q", flag.Arg(0))
	}
	if *coredns == "" {
		*coredns = harness.CoreDNSBinary()
	}
	if _, err := os.Stat(*coredns); err != nil {
		fail("no CoreDNS at %s: run hack/diffcoredns.sh build, or pass -coredns", *coredns)
	}
	if *kubeconfig == "" {
		*kubeconfig = os.Getenv("SVCDISC_TEST_KUBECONFIG")
	}
	if *kubeconfig == "" {
		*kubeconfig = os.Getenv("KUBECONFIG")
	}
	if *kubeconfig == "" {
		fail("no API server: pass -kubeconfig, or start one with hack/testenv.sh start and source its env file")
	}
	if *cases == "" {
		*cases = "testdata"
		if _, err := os.Stat("hack/diffcoredns/testdata"); err == nil {
			*cases = "hack/diffcoredns/testdata"
		}
	}
	all, err := LoadCases(*cases)
	if err != nil {
		fail("%v", err)
	}
	if *only != "" {
		want := map[string]bool{}
		for _, n := range strings.Split(*only, ",") {
			want[strings.TrimSuffix(n, ".case")] = true
		}
		var sel []*Case
		for _, c := range all {
			if want[c.Name] {
				sel = append(sel, c)
				delete(want, c.Name)
			}
		}
		for n := range want {
			fail("no case %q in %s", n, *cases)
		}
		all = sel
	}
	work, err := os.MkdirTemp("", "diffcoredns.")
	if err != nil {
		fail("%v", err)
	}
	if !*keep {
		defer os.RemoveAll(work)
	}
	if *svcdisc == "" {
		if *svcdisc, err = buildSvcdisc(work); err != nil {
			fail("%v", err)
		}
	}
	env := &Env{CoreDNS: *coredns, Svcdisc: *svcdisc, Kubeconfig: *kubeconfig}
	if *verbose {
		env.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "[diffcoredns] "+format+"\n", args...) }
	}
	ctx := context.Background()
	if err := env.Connect(ctx); err != nil {
		fail("%v", err)
	}
	bad := 0
	for _, c := range all {
		dir := filepath.Join(work, c.Name)
		res, err := env.Run(ctx, c, dir)
		if res != nil {
			res.Print(os.Stdout, *verbose)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "diffcoredns: %s: %v\n", c.Name, err)
			bad++
			continue
		}
		if res.Count(Different) > 0 {
			bad++
		}
	}
	if *keep {
		fmt.Fprintf(os.Stderr, "diffcoredns: work directory %s\n", work)
	}
	if bad > 0 {
		fmt.Fprintf(os.Stderr, "diffcoredns: %d of %d cases differ or failed\n", bad, len(all))
		if !*keep {
			os.RemoveAll(work)
		}
		os.Exit(1)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "diffcoredns: "+format+"\n", args...)
	os.Exit(2)
}
