package autopath

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/plugin"
	"github.com/svcdisc/svcdisc/zones"
)

const soa = "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5"

// world is the fake rest of the chain: what exists, by name and type.
// Names outside cluster.local. are "forwarded"; fail names SERVFAIL.
var world = map[string]map[uint16]string{
	"web.shop.svc.cluster.local.": {dns.TypeA: "web.shop.svc.cluster.local. 30 IN A 10.96.0.1"},
	"db.bank.svc.cluster.local.":  {dns.TypeA: "db.bank.svc.cluster.local. 30 IN A 10.96.0.2", dns.TypeAAAA: "db.bank.svc.cluster.local. 30 IN AAAA fd00::2"},
	"api.github.com.":             {dns.TypeA: "api.github.com. 60 IN A 192.0.2.1", dns.TypeAAAA: "api.github.com. 60 IN AAAA 2001:db8::1"},
	"shop.svc.cluster.local.":     {},
	"bank.svc.cluster.local.":     {},
}

// fake answers from world and records the names asked, and which of them
// were asked as the server's own (quiet) lookups.
type fake struct{ asked, quiet []string }

func (f *fake) Name() string { return "kubernetes" }

func (f *fake) ServeDNS(ctx context.Context, st *plugin.State) *dns.Msg {
	f.asked = append(f.asked, st.Name)
	if plugin.IsQuiet(ctx) {
		f.quiet = append(f.quiet, st.Name)
	}
	m := st.Reply()
	if strings.HasPrefix(st.Name, "fail.") {
		m.Rcode = dns.RcodeServerFailure
		return m
	}
	st.By = "kubernetes"
	if !strings.HasSuffix(st.Name, "cluster.local.") {
		st.By = "forward"
	}
	types, ok := world[st.Name]
	if !ok {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{mustRR(soa)}
		return m
	}
	if s, ok := types[st.Type]; ok {
		m.Answer = []dns.RR{mustRR(s)}
	} else {
		m.Ns = []dns.RR{mustRR(soa)}
	}
	return m
}

func mustRR(s string) dns.RR {
	r, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return r
}

func pod(ns, name, ip string) *zones.Pod {
	return &zones.Pod{Namespace: ns, Name: name, IPs: []netip.Addr{netip.MustParseAddr(ip)}, Running: true}
}

func clusterZone(synced bool, objs ...zones.Object) *zones.Zone {
	z := zones.New(zones.Options{Zones: []string{"cluster.local."}, TTL: 30, Pods: zones.PodsVerified})
	z.Replace(objs)
	if synced {
		z.MarkSynced()
	}
	return z
}

type counts map[string]int

func newHandler(p Pods, c counts) (*Handler, *fake) {
	f := &fake{}
	h := &Handler{Zones: plugin.Zones{"."}, Pods: p, Next: f,
		Count: func(r string) { c[r]++ }}
	h.Lookup = func(ctx context.Context, st *plugin.State, name string, qtype uint16) *dns.Msg {
		return h.ServeDNS(ctx, plugin.LookupState(st, name, qtype, ".")) // from the chain's start, as blockLookup
	}
	return h, f
}

func ask(h plugin.Handler, client, name string, qtype uint16) (*dns.Msg, *plugin.State) {
	r := new(dns.Msg)
	r.SetQuestion(name, qtype)
	var remote net.Addr
	if client != "" {
		remote = net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(client), 40000))
	}
	st := plugin.NewState(r, ".", remote, "udp")
	return h.ServeDNS(context.Background(), st), st
}

func answer(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	return out
}

func TestAutoPath(t *testing.T) {
	hostNet := pod("kube-system", "agent", "10.0.0.9")
	hostNet.HostNetwork = true
	pending := pod("shop", "pending", "10.1.0.8")
	pending.Running = false
	z := clusterZone(true,
		pod("shop", "cart-0", "10.1.0.5"), pod("bank", "pay-0", "10.1.0.6"),
		pod("shop", "a", "10.1.0.7"), pod("bank", "b", "10.1.0.7"), // one address, two Pods
		pod("shop", "node-pod", "10.0.0.9"), hostNet, hostNet, pending)
	tests := []struct {
		name, client, qname string
		qtype               uint16
		rcode               int
		answer              []string
		noFast              bool
		result              string // counted result, "" for none
	}{
		{"an external name is completed from the first query", "10.1.0.5", "api.github.com.shop.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess,
			[]string{"api.github.com.shop.svc.cluster.local. 60 IN CNAME api.github.com.", "api.github.com. 60 IN A 192.0.2.1"}, true, Completed},
		{"AAAA takes the same path as A", "10.1.0.5", "api.github.com.shop.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess,
			[]string{"api.github.com.shop.svc.cluster.local. 60 IN CNAME api.github.com.", "api.github.com. 60 IN AAAA 2001:db8::1"}, true, Completed},
		{"a Service of another namespace by <svc>.<ns>", "10.1.0.5", "db.bank.shop.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess,
			[]string{"db.bank.shop.svc.cluster.local. 30 IN CNAME db.bank.svc.cluster.local.", "db.bank.svc.cluster.local. 30 IN A 10.96.0.2"}, true, Completed},
		{"NODATA at the name found is the CNAME with the negative TTL", "10.1.0.5", "web.shop.shop.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess,
			[]string{"web.shop.shop.svc.cluster.local. 5 IN CNAME web.shop.svc.cluster.local."}, true, Completed},
		{"a name that exists as asked is answered as asked, and may be kept", "10.1.0.5", "web.shop.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess,
			[]string{"web.shop.svc.cluster.local. 30 IN A 10.96.0.1"}, false, ""},
		{"nothing on the path: NXDOMAIN for the asked name", "10.1.0.5", "nope.example.shop.svc.cluster.local.", dns.TypeA, dns.RcodeNameError,
			nil, true, NotFound},
		{"another namespace's search domain is not completed", "10.1.0.6", "api.github.com.shop.svc.cluster.local.", dns.TypeA, dns.RcodeNameError,
			nil, true, Skipped},
		{"an address two Pods hold is not completed", "10.1.0.7", "api.github.com.shop.svc.cluster.local.", dns.TypeA, dns.RcodeNameError,
			nil, true, Skipped},
		{"a Pod sharing its address with a hostNetwork Pod is not completed", "10.0.0.9", "api.github.com.shop.svc.cluster.local.", dns.TypeA, dns.RcodeNameError,
			nil, true, Skipped},
		{"a Pod that is not Running is not completed", "10.1.0.8", "api.github.com.shop.svc.cluster.local.", dns.TypeA, dns.RcodeNameError,
			nil, true, Skipped},
		{"an address no Pod holds is not completed", "192.0.2.99", "api.github.com.shop.svc.cluster.local.", dns.TypeA, dns.RcodeNameError,
			nil, true, Skipped},
		{"the fast path's trial run (no client) is never kept", "", "api.github.com.shop.svc.cluster.local.", dns.TypeA, dns.RcodeNameError,
			nil, true, ""},
		{"a failure on the path answers as asked", "10.1.0.5", "fail.x.shop.svc.cluster.local.", dns.TypeA, dns.RcodeServerFailure,
			nil, false, ""},
		{"a name outside <ns>.svc is handed on", "10.1.0.5", "api.github.com.", dns.TypeA, dns.RcodeSuccess,
			[]string{"api.github.com. 60 IN A 192.0.2.1"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := counts{}
			h, _ := newHandler(z, c)
			m, st := ask(h, tt.client, tt.qname, tt.qtype)
			if m.Rcode != tt.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.rcode])
			}
			if got := answer(m); strings.Join(got, "\n") != strings.Join(tt.answer, "\n") {
				t.Errorf("answer\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.answer, "\n"))
			}
			if m.Question[0].Name != tt.qname || m.Id != 0 && m.Id != st.Req.Id {
				t.Errorf("question %v, want the asked one", m.Question[0])
			}
			if st.NoFast != tt.noFast {
				t.Errorf("NoFast = %v, want %v", st.NoFast, tt.noFast)
			}
			if tt.noFast && (st.By == "forward") {
				t.Errorf("By = %q: the cache would keep a reply that depends on the client", st.By)
			}
			if n := c[Completed] + c[NotFound] + c[Skipped]; tt.result == "" && n != 0 || tt.result != "" && (n != 1 || c[tt.result] != 1) {
				t.Errorf("counts %v, want one %q", c, tt.result)
			}
			if tt.rcode == dns.RcodeNameError && len(m.Ns) == 0 {
				t.Errorf("NXDOMAIN without the SOA")
			}
		})
	}
}

func TestAutoPathWalksThePathInOrder(t *testing.T) {
	z := clusterZone(true, pod("shop", "cart-0", "10.1.0.5"))
	c := counts{}
	h, f := newHandler(z, c)
	h.HostSearch = []string{"corp.example.com.", "cluster.local."} // a duplicate is tried once
	ask(h, "10.1.0.5", "nope.shop.svc.cluster.local.", dns.TypeA)
	want := []string{"nope.shop.svc.cluster.local.", "nope.svc.cluster.local.", "nope.cluster.local.", "nope.corp.example.com.", "nope."}
	if strings.Join(f.asked, " ") != strings.Join(want, " ") {
		t.Errorf("asked %v\nwant  %v", f.asked, want)
	}
	if c[NotFound] != 1 {
		t.Errorf("counts %v", c)
	}
	// The client asked the first name; log must not see the others.
	if strings.Join(f.quiet, " ") != strings.Join(want[1:], " ") {
		t.Errorf("quiet lookups %v\nwant          %v", f.quiet, want[1:])
	}
}

func TestAutoPathFollowsTheIndex(t *testing.T) {
	z := clusterZone(false, pod("shop", "cart-0", "10.1.0.5"))
	h, _ := newHandler(z, counts{})
	q := "api.github.com.shop.svc.cluster.local."
	if m, _ := ask(h, "10.1.0.5", q, dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("completed before the zone synced: %v", m)
	}
	z.MarkSynced()
	if m, _ := ask(h, "10.1.0.5", q, dns.TypeA); m.Rcode != dns.RcodeSuccess {
		t.Errorf("not completed once synced: %v", m)
	}
	if m, _ := ask(h, "10.1.0.9", q, dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("completed for an unknown address: %v", m)
	}
	z.Update(pod("shop", "new-0", "10.1.0.9")) // a Pod appears
	if m, _ := ask(h, "10.1.0.9", q, dns.TypeA); m.Rcode != dns.RcodeSuccess {
		t.Errorf("a new Pod's next query is not completed: %v", m)
	}
	z.Update(pod("bank", "new-0", "10.1.0.9")) // the address now also a bank Pod's
	if m, _ := ask(h, "10.1.0.9", q, dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("completed for a reused address: %v", m)
	}
	z.Delete(zones.Key{Kind: zones.KindPod, Namespace: "shop", Name: "new-0"})
	if m, _ := ask(h, "10.1.0.9", q, dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("completed with the old Pod's namespace after the address moved to bank: %v", m)
	}
	if m, _ := ask(h, "10.1.0.9", "api.github.com.bank.svc.cluster.local.", dns.TypeA); m.Rcode != dns.RcodeSuccess {
		t.Errorf("not completed for the address's new namespace: %v", m)
	}
}

func TestAutoPathFromAResolvConf(t *testing.T) {
	c := counts{}
	h, f := newHandler(nil, c)
	h.Pods = nil
	h.Search = []string{"shop.svc.cluster.local.", "svc.cluster.local.", "cluster.local."}
	m, st := ask(h, "192.0.2.7", "db.bank.shop.svc.cluster.local.", dns.TypeAAAA)
	want := []string{"db.bank.shop.svc.cluster.local. 30 IN CNAME db.bank.svc.cluster.local.", "db.bank.svc.cluster.local. 30 IN AAAA fd00::2"}
	if strings.Join(answer(m), "\n") != strings.Join(want, "\n") || !st.NoFast || c[Completed] != 1 {
		t.Errorf("answer %v (NoFast %v, counts %v), want %v", answer(m), st.NoFast, c, want)
	}
	if len(f.asked) != 2 {
		t.Errorf("asked %v", f.asked)
	}
}
