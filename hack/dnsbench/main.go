// Command dnsbench writes the data for hack/dnsbench.sh, the side-by-side
// benchmark of svcdisc, CoreDNS and Knot DNS: one synthetic cluster as
// Kubernetes manifests (for svcdisc) and as an RFC 1035 zone file holding the
// records svcdisc answers for it (for CoreDNS's file plugin and knotd), an
// upstream zone for forwarded names, and dnsperf query files. Its churn
// subcommand flips endpoint readiness in a small manifest file while
// svcdisc serves. It is a benchmark tool, never a test.
//
//	go run ./hack/dnsbench gen -out /tmp/bench
//	go run ./hack/dnsbench churn -manifests /tmp/bench/manifests -rate 20
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage:
  dnsbench gen -out DIR [-services N] [-namespaces N] [-headless N] [-endpoints N]
               [-zone ZONE] [-ttl N] [-queries N] [-external N] [-seed N]
  dnsbench churn -manifests DIR [-rate N] [-services N] [-endpoints N]
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = runGen(os.Args[2:])
	case "churn":
		err = runChurn(os.Args[2:])
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "dnsbench: unknown subcommand %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dnsbench:", err)
		os.Exit(1)
	}
}

func runGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	out := fs.String("out", "", "output directory (required)")
	var s spec
	fs.IntVar(&s.Services, "services", 10000, "ClusterIP Services (ports http 80 and metrics 9090)")
	fs.IntVar(&s.Namespaces, "namespaces", 100, "namespaces the Services are spread over")
	fs.IntVar(&s.Headless, "headless", 1000, "headless Services, each with one EndpointSlice")
	fs.IntVar(&s.Endpoints, "endpoints", 10, "ready endpoints per headless Service")
	fs.StringVar(&s.Zone, "zone", "cluster.local", "cluster domain")
	fs.IntVar(&s.TTL, "ttl", 30, "TTL of the zone file's records: the kubernetes plugin's ttl")
	fs.IntVar(&s.Queries, "queries", 100000, "lines per query file")
	fs.IntVar(&s.External, "external", 1000, "distinct names in the upstream zone example.test")
	fs.Uint64Var(&s.Seed, "seed", 1, "random seed of the query files")
	fs.Parse(args)
	if *out == "" {
		return fmt.Errorf("gen: -out is required")
	}
	c, err := newCluster(s)
	if err != nil {
		return err
	}
	return c.write(*out)
}

func runChurn(args []string) error {
	fs := flag.NewFlagSet("churn", flag.ExitOnError)
	dir := fs.String("manifests", "", "manifest directory svcdisc watches (required); churn.yaml is written there")
	rate := fs.Float64("rate", 20, "readiness flips per second")
	services := fs.Int("services", 4, "headless Services in churn.yaml")
	endpoints := fs.Int("endpoints", 10, "endpoints per Service")
	fs.Parse(args)
	if *dir == "" {
		return fmt.Errorf("churn: -manifests is required")
	}
	if *rate <= 0 || *services <= 0 || *endpoints <= 0 {
		return fmt.Errorf("churn: -rate, -services and -endpoints must be positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return churn(ctx, *dir, *rate, *services, *endpoints)
}
