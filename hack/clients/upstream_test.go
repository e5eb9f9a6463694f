package clients

import (
	"fmt"
	"os"
	"strings"

	"github.com/miekg/dns"
)

// upstreamAddr is where the upstream listens inside the namespace; the
// Corefile in testdata forwards there.
const upstreamAddr = "127.0.0.1:5300"

// upstreamRecords are the names outside the cluster, as an authoritative
// server of example.com would have them.
var upstreamRecords = []string{
	"example.com. 300 IN SOA ns.example.com. admin.example.com. 1 7200 3600 1209600 300",
	"www.example.com. 300 IN A 192.0.2.80",
	"db.example.com. 300 IN A 192.0.2.20",
}

// apSuffix: every name below it has the A record apAddr, so that the
// side-by-side autopath test (coredns_test.go) can give each lookup a name
// of its own that exists outside the cluster, and no server's cache
// carries one lookup's answer into another's.
const (
	apSuffix = ".ap.example.com."
	apAddr   = "192.0.2.99"
)

// runUpstream is the upstream role: an authoritative server for
// upstreamRecords and the names below apSuffix on upstreamAddr (UDP and
// TCP), NXDOMAIN with the SOA for other names (any zone), NODATA for a name
// without the type asked. It never returns.
func runUpstream() {
	rrs := map[string][]dns.RR{}
	var soa dns.RR
	for _, l := range upstreamRecords {
		rr, err := dns.NewRR(l)
		if err != nil {
			fmt.Fprintln(os.Stderr, "upstream:", err)
			os.Exit(2)
		}
		if rr.Header().Rrtype == dns.TypeSOA {
			soa = rr
		}
		rrs[rr.Header().Name] = append(rrs[rr.Header().Name], rr)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		if len(r.Question) != 1 {
			m.Rcode = dns.RcodeFormatError
			_ = w.WriteMsg(m)
			return
		}
		q := r.Question[0]
		name := strings.ToLower(q.Name)
		have, ok := rrs[name]
		if strings.HasSuffix(name, apSuffix) {
			a, _ := dns.NewRR(name + " 300 IN A " + apAddr)
			have, ok = []dns.RR{a}, true
		}
		switch {
		case !ok:
			// Every other name does not exist, as the Internet's servers
			// would say for the search list's candidates.
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{soa}
		default:
			for _, rr := range have {
				if rr.Header().Rrtype == q.Qtype {
					m.Answer = append(m.Answer, rr)
				}
			}
			if len(m.Answer) == 0 {
				m.Ns = []dns.RR{soa}
			}
		}
		_ = w.WriteMsg(m)
	})
	errs := make(chan error, 2)
	for _, net := range []string{"udp", "tcp"} {
		s := &dns.Server{Addr: upstreamAddr, Net: net, Handler: h}
		go func() { errs <- s.ListenAndServe() }()
	}
	fmt.Fprintln(os.Stderr, "upstream:", <-errs)
	os.Exit(2)
}
