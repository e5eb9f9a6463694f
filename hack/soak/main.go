// Command soak is the helper of hack/soak.sh, the load and soak test of
// svcdisc. It builds the mixed dnsperf query file from the files that
// hack/dnsbench generates, together with the expected response code of
// each query; it reads dnsperf's per-response output (-v, with -S interval
// markers) and computes latency percentiles per interval and response
// codes per class of query; and it probes the server (DNS answers,
// goroutine count from the pprof endpoint), so that the script needs no
// dig or curl. It is a test tool, never part of svcdisc.
//
//	soak mix -queries DATA/queries -zone cluster.local -out mixed.txt -classes classes.tsv
//	dnsperf ... -v -S 30 | soak stats -classes classes.tsv -interval 30 -out DIR
//	soak probe -addr 127.0.0.1:1053 -name web.shop.svc.cluster.local -type A
//	soak goroutines -url http://127.0.0.1:6060/debug/pprof/goroutine?debug=1
package main

import (
	"fmt"
	"os"
)

const usage = `usage:
  soak mix -queries DIR -zone ZONE -out FILE -classes FILE [-lines N] [-shares a=40,nxdomain=30,srv=10,external=20]
  soak stats -classes FILE -out DIR [-interval SECONDS] [-passthrough FILE]   (dnsperf -v -S output on stdin)
  soak probe -addr HOST:PORT -name NAME [-type TYPE] [-timeout DURATION]
  soak goroutines -url URL
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "mix":
		err = runMix(os.Args[2:])
	case "stats":
		err = runStats(os.Args[2:], os.Stdin)
	case "probe":
		err = runProbe(os.Args[2:])
	case "goroutines":
		err = runGoroutines(os.Args[2:])
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "soak: unknown subcommand %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}
