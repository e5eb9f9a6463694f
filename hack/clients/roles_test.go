package clients

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// roleEnv names the role the test binary plays when the test re-executes
// it inside the namespace: "upstream" or "go" (the Go client).
const roleEnv = "SVCDISC_CLIENTS_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "upstream":
		runUpstream()
	case "go":
		os.Exit(runGoClient(os.Args[1:]))
	}
	code := m.Run()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	os.Exit(code)
}

// runGoClient is the Go client: Go's pure resolver (GODEBUG=netdns=go and
// PreferGo) reading the namespace's /etc/resolv.conf.
//
//	host NAME              LookupHost: one address a line
//	addr IP                LookupAddr: one name a line
//	srv SERVICE PROTO NAME LookupSRV: "target port" a line
//	query NAME TYPE        one query to 127.0.0.1:53 with miekg/dns, the answer section
//
// Exit 0 on success, 2 with the error on stderr otherwise.
func runGoClient(args []string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := &net.Resolver{PreferGo: true}
	var lines []string
	var err error
	switch {
	case len(args) == 2 && args[0] == "host":
		lines, err = r.LookupHost(ctx, args[1])
	case len(args) == 2 && args[0] == "addr":
		lines, err = r.LookupAddr(ctx, args[1])
	case len(args) == 4 && args[0] == "srv":
		var srvs []*net.SRV
		_, srvs, err = r.LookupSRV(ctx, args[1], args[2], args[3])
		for _, s := range srvs {
			lines = append(lines, strings.TrimSuffix(s.Target, ".")+" "+strconv.Itoa(int(s.Port)))
		}
	case len(args) == 3 && args[0] == "query":
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(args[1]), dns.StringToType[args[2]])
		var in *dns.Msg
		in, _, err = (&dns.Client{Timeout: 2 * time.Second}).ExchangeContext(ctx, m, "127.0.0.1:53")
		if err == nil {
			lines = append(lines, "rcode "+dns.RcodeToString[in.Rcode])
			for _, rr := range in.Answer {
				lines = append(lines, rr.String())
			}
		}
	default:
		err = fmt.Errorf("usage: host NAME | addr IP | srv SERVICE PROTO NAME | query NAME TYPE")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for _, l := range lines {
		fmt.Println(l)
	}
	return 0
}
