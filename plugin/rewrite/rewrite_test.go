package rewrite

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/internal/zonetest"
	"github.com/svcdisc/svcdisc/plugin"
	"github.com/svcdisc/svcdisc/plugin/kubernetes"
	"github.com/svcdisc/svcdisc/zones"
)

// rulesOf parses rewrite directives written as in a server block.
func rulesOf(t *testing.T, lines string) []*config.Rewrite {
	t.Helper()
	c, err := config.Parse("Corefile", strings.NewReader(". {\n"+lines+"\n    forward . 127.0.0.1\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return c.Servers[0].Rewrites
}

// echo is a next handler that answers whatever it is asked with records
// built from the question it sees (QNAME in a record stands for it), and
// remembers that question.
type echo struct {
	records []string // in the answer section; default an A record
	ns      []string
	rcode   int
	seen    *dns.Msg
	calls   int
}

func (e *echo) Name() string { return "echo" }

func (e *echo) ServeDNS(_ context.Context, st *plugin.State) *dns.Msg {
	e.seen, e.calls = st.Req, e.calls+1
	m := st.Reply()
	m.Rcode = e.rcode
	q := st.Req.Question[0].Name
	recs := e.records
	if recs == nil {
		recs = []string{"QNAME 300 IN A 10.0.0.1"}
	}
	for _, s := range recs {
		m.Answer = append(m.Answer, mustRR(s, q))
	}
	for _, s := range e.ns {
		m.Ns = append(m.Ns, mustRR(s, q))
	}
	st.By = "echo"
	return m
}

func mustRR(s, qname string) dns.RR {
	rr, err := dns.NewRR(strings.ReplaceAll(s, "QNAME", qname))
	if err != nil {
		panic(err)
	}
	return rr
}

func query(name string, qtype uint16) *plugin.State {
	r := new(dns.Msg)
	r.SetQuestion(name, qtype)
	return plugin.NewState(r, ".", &net.UDPAddr{IP: net.ParseIP("192.0.2.77"), Port: 5353}, "udp")
}

func texts(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		if soa, ok := rr.(*dns.SOA); ok {
			c := *soa
			c.Serial = 0
			rr = &c
		}
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

func normal(rrs []string) []string {
	var out []string
	for _, s := range rrs {
		out = append(out, mustRR(s, "").String())
	}
	slices.Sort(out)
	return out
}

type rewriteCase struct {
	name   string
	rules  string
	qname  string
	qtype  uint16 // default A
	next   *echo  // default: answers an A record for the name it sees
	seen   string // the question the next handler saw: "NAME TYPE CLASS"
	rcode  int
	answer []string
	ns     []string
	// noFast is whether the reply must be kept off the fast path (every
	// rule that matched).
	noFast bool
}

func runRewrite(t *testing.T, cases []rewriteCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next := tc.next
			if next == nil {
				next = &echo{}
			}
			h, err := New(rulesOf(t, tc.rules), next)
			if err != nil {
				t.Fatal(err)
			}
			qtype := tc.qtype
			if qtype == 0 {
				qtype = dns.TypeA
			}
			st := query(tc.qname, qtype)
			asked := st.Req
			before := asked.Copy()
			m := h.ServeDNS(context.Background(), st)
			if next.seen != nil {
				q := next.seen.Question[0]
				if got := q.Name + " " + dns.TypeToString[q.Qtype] + " " + dns.ClassToString[q.Qclass]; got != tc.seen {
					t.Errorf("next handler saw %q, want %q", got, tc.seen)
				}
			} else if tc.seen != "" {
				t.Errorf("next handler was not called, want it to see %q", tc.seen)
			}
			if m.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
			}
			if len(m.Question) != 1 || m.Question[0] != before.Question[0] {
				t.Errorf("reply question %v, want the asked %v", m.Question, before.Question[0])
			}
			if m.Id != before.Id {
				t.Errorf("reply ID %d, want %d", m.Id, before.Id)
			}
			if got, want := texts(m.Answer), normal(tc.answer); !slices.Equal(got, want) {
				t.Errorf("answer:\n got %q\nwant %q", got, want)
			}
			if got, want := texts(m.Ns), normal(tc.ns); !slices.Equal(got, want) {
				t.Errorf("authority:\n got %q\nwant %q", got, want)
			}
			if st.NoFast != tc.noFast {
				t.Errorf("NoFast = %v, want %v", st.NoFast, tc.noFast)
			}
			if st.Req != asked || st.Name != strings.ToLower(tc.qname) || st.Type != qtype {
				t.Errorf("state not given back as asked: %v %s %d", st.Req.Question, st.Name, st.Type)
			}
			if asked.String() != before.String() {
				t.Errorf("the client's query was changed:\n%v\nwant\n%v", asked, before)
			}
		})
	}
}

func TestNameRewrites(t *testing.T) {
	runRewrite(t, []rewriteCase{
		{name: "exact rewrites the name and always maps the answer back",
			rules: "rewrite name web.corp.internal web.shop.svc.cluster.local", qname: "web.corp.internal.",
			seen: "web.shop.svc.cluster.local. A IN", answer: []string{"web.corp.internal. 300 IN A 10.0.0.1"}, noFast: true},
		{name: "exact matches in any case and gives the client its own case back",
			rules: "rewrite name web.corp.internal web.shop.svc.cluster.local", qname: "Web.Corp.Internal.",
			seen: "web.shop.svc.cluster.local. A IN", answer: []string{"Web.Corp.Internal. 300 IN A 10.0.0.1"}, noFast: true},
		{name: "exact maps names below the rewritten one back too",
			rules: "rewrite name web.corp.internal web.shop.svc.cluster.local", qname: "web.corp.internal.",
			next: &echo{records: []string{"QNAME 300 IN CNAME a.QNAME", "a.QNAME 300 IN A 10.0.0.2"}},
			seen: "web.shop.svc.cluster.local. A IN", answer: []string{
				"web.corp.internal. 300 IN CNAME a.web.corp.internal.", "a.web.corp.internal. 300 IN A 10.0.0.2"}, noFast: true},
		{name: "exact does not match a name below FROM",
			rules: "rewrite name web.corp.internal web.shop.svc.cluster.local", qname: "a.web.corp.internal.",
			seen: "a.web.corp.internal. A IN", answer: []string{"a.web.corp.internal. 300 IN A 10.0.0.1"}},
		{name: "prefix (FROM and TO are fully qualified: a leading label) without answer leaves the answer as is",
			rules: "rewrite name prefix web www", qname: "web.example.org.",
			seen: "www.example.org. A IN", answer: []string{"www.example.org. 300 IN A 10.0.0.1"}, noFast: true},
		{name: "prefix with answer auto maps the answer back",
			rules: "rewrite name prefix web www answer auto", qname: "web.example.org.",
			seen: "www.example.org. A IN", answer: []string{"web.example.org. 300 IN A 10.0.0.1"}, noFast: true},
		{name: "prefix does not match inside a label",
			rules: "rewrite name prefix web www answer auto", qname: "webshop.example.org.",
			seen: "webshop.example.org. A IN", answer: []string{"webshop.example.org. 300 IN A 10.0.0.1"}},
		{name: "suffix with answer auto maps names and values ending in TO back",
			rules: "rewrite name suffix .corp.internal .svc.cluster.local answer auto", qname: "alias.shop.corp.internal.",
			next: &echo{records: []string{"QNAME 30 IN CNAME web.shop.svc.cluster.local.", "web.shop.svc.cluster.local. 30 IN A 10.96.1.1"}},
			seen: "alias.shop.svc.cluster.local. A IN", answer: []string{
				"alias.shop.corp.internal. 30 IN CNAME web.shop.corp.internal.", "web.shop.corp.internal. 30 IN A 10.96.1.1"}, noFast: true},
		{name: "substring replaces every occurrence and answer auto maps the asked name back",
			rules: "rewrite name substring .corp.internal .svc.cluster.local answer auto", qname: "web.shop.corp.internal.",
			seen: "web.shop.svc.cluster.local. A IN", answer: []string{"web.shop.corp.internal. 300 IN A 10.0.0.1"}, noFast: true},
		{name: "regex fills in its groups; answer name maps the answer back",
			rules: `rewrite name regex (.*)-(us-west-1)\.example\.org {1}.service.{2}.consul answer name (.*)\.service\.(us-west-1)\.consul {1}-{2}.example.org`,
			qname: "ftp-us-west-1.example.org.",
			seen:  "ftp.service.us-west-1.consul. A IN", answer: []string{"ftp-us-west-1.example.org. 300 IN A 10.0.0.1"}, noFast: true},
		{name: "regex block form with answer value rewrites record values",
			rules: "rewrite stop {\n    name regex (.*)\\.corp\\.internal\\. {1}.svc.cluster.local\n    answer auto\n    answer value (.*)\\.svc\\.cluster\\.local\\. {1}.corp.internal\n}",
			qname: "_http._tcp.web.shop.corp.internal.", qtype: dns.TypeSRV,
			next: &echo{records: []string{"QNAME 30 IN SRV 0 100 80 web.shop.svc.cluster.local."}},
			seen: "_http._tcp.web.shop.svc.cluster.local. SRV IN", answer: []string{
				"_http._tcp.web.shop.corp.internal. 30 IN SRV 0 100 80 web.shop.corp.internal."}, noFast: true},
		{name: "a name no rule matches goes on untouched and may be kept on the fast path",
			rules: "rewrite name suffix .corp.internal .svc.cluster.local answer auto", qname: "web.shop.svc.cluster.local.",
			seen: "web.shop.svc.cluster.local. A IN", answer: []string{"web.shop.svc.cluster.local. 300 IN A 10.0.0.1"}},
		{name: "an invalid name after the rewrite is SERVFAIL and goes no further",
			rules: "rewrite name prefix a x..", qname: "a.b.", rcode: dns.RcodeServerFailure},
	})
}

func TestStopAndContinue(t *testing.T) {
	runRewrite(t, []rewriteCase{
		{name: "stop ends the rules at the first that matches",
			rules: "rewrite name a.example b.example\nrewrite name b.example c.example", qname: "a.example.",
			seen: "b.example. A IN", answer: []string{"a.example. 300 IN A 10.0.0.1"}, noFast: true},
		{name: "a rule that does not match hands on to the next even in stop mode",
			rules: "rewrite name x.example y.example\nrewrite name b.example c.example", qname: "b.example.",
			seen: "c.example. A IN", answer: []string{"b.example. 300 IN A 10.0.0.1"}, noFast: true},
		{name: "continue hands the rewritten query to the next rule; answers are mapped back last rule first",
			rules: "rewrite continue name a.example b.example\nrewrite name b.example c.example", qname: "a.example.",
			seen: "c.example. A IN", answer: []string{"a.example. 300 IN A 10.0.0.1"}, noFast: true},
		{name: "continue from a name rule to a type rule",
			rules: "rewrite continue name exact a.example b.example\nrewrite type AAAA A", qname: "a.example.", qtype: dns.TypeAAAA,
			seen: "b.example. A IN", answer: []string{"a.example. 300 IN A 10.0.0.1"}, noFast: true},
	})
}

func TestTypeAndClass(t *testing.T) {
	runRewrite(t, []rewriteCase{
		{name: "type ANY asked as HINFO",
			rules: "rewrite type ANY HINFO", qname: "a.example.", qtype: dns.TypeANY,
			next: &echo{records: []string{}}, seen: "a.example. HINFO IN", noFast: true},
		{name: "type AAAA asked as A (the AD stub-domain Corefile)",
			rules: "rewrite stop type AAAA A", qname: "dc.ad.example.", qtype: dns.TypeAAAA,
			seen: "dc.ad.example. A IN", answer: []string{"dc.ad.example. 300 IN A 10.0.0.1"}, noFast: true},
		{name: "another type is untouched",
			rules: "rewrite type AAAA A", qname: "a.example.", qtype: dns.TypeMX,
			next: &echo{records: []string{}}, seen: "a.example. MX IN"},
	})
	for _, tc := range []struct {
		rules       string
		asked, seen uint16
		noFast      bool
	}{
		{"rewrite class CH IN", dns.ClassCHAOS, dns.ClassINET, true},
		{"rewrite class CH IN", dns.ClassINET, dns.ClassINET, false},
		// continue: HS to CH, then CH to IN.
		{"rewrite continue class HS CH\nrewrite class CH IN", dns.ClassHESIOD, dns.ClassINET, true},
		// stop: HS to CH only.
		{"rewrite class HS CH\nrewrite class CH IN", dns.ClassHESIOD, dns.ClassCHAOS, true},
	} {
		next := &echo{}
		h, _ := New(rulesOf(t, tc.rules), next)
		st := query("a.example.", dns.TypeA)
		st.Req.Question[0].Qclass, st.Class = tc.asked, tc.asked
		m := h.ServeDNS(context.Background(), st)
		if next.seen.Question[0].Qclass != tc.seen || m.Question[0].Qclass != tc.asked || st.NoFast != tc.noFast {
			t.Errorf("%q asked in %s: next saw %s, reply question in %s, NoFast %v; want %s, %s, %v", tc.rules,
				dns.ClassToString[tc.asked], dns.ClassToString[next.seen.Question[0].Qclass], dns.ClassToString[m.Question[0].Qclass], st.NoFast,
				dns.ClassToString[tc.seen], dns.ClassToString[tc.asked], tc.noFast)
		}
	}
}

func TestTTL(t *testing.T) {
	recs := []string{"QNAME 5 IN A 10.0.0.1", "QNAME 600 IN A 10.0.0.2", "QNAME 100 IN A 10.0.0.3"}
	ns := []string{"example.org. 3600 IN NS ns.example.org."}
	runRewrite(t, []rewriteCase{
		{name: "a range raises and caps TTLs in every section",
			rules: "rewrite ttl suffix .example.org 30-300", qname: "a.example.org.", next: &echo{records: recs, ns: ns},
			seen: "a.example.org. A IN", noFast: true,
			answer: []string{"a.example.org. 30 IN A 10.0.0.1", "a.example.org. 300 IN A 10.0.0.2", "a.example.org. 100 IN A 10.0.0.3"},
			ns:     []string{"example.org. 300 IN NS ns.example.org."}},
		{name: "a single TTL sets every one",
			rules: "rewrite ttl a.example.org 15", qname: "a.example.org.", next: &echo{records: recs},
			seen: "a.example.org. A IN", noFast: true,
			answer: []string{"a.example.org. 15 IN A 10.0.0.1", "a.example.org. 15 IN A 10.0.0.2", "a.example.org. 15 IN A 10.0.0.3"}},
		{name: "an open range only caps",
			rules: "rewrite ttl regex (.*)\\.example\\.org -30", qname: "a.example.org.", next: &echo{records: recs},
			seen: "a.example.org. A IN", noFast: true,
			answer: []string{"a.example.org. 5 IN A 10.0.0.1", "a.example.org. 30 IN A 10.0.0.2", "a.example.org. 30 IN A 10.0.0.3"}},
		{name: "prefix and substring match the asked name",
			rules: "rewrite continue ttl prefix b 1\nrewrite ttl substring .example. 40-", qname: "a.example.org.", next: &echo{records: recs},
			seen: "a.example.org. A IN", noFast: true,
			answer: []string{"a.example.org. 40 IN A 10.0.0.1", "a.example.org. 600 IN A 10.0.0.2", "a.example.org. 100 IN A 10.0.0.3"}},
		{name: "another name keeps its TTLs",
			rules: "rewrite ttl a.example.org 15", qname: "b.example.org.", next: &echo{records: recs[:1]},
			seen: "b.example.org. A IN", answer: []string{"b.example.org. 5 IN A 10.0.0.1"}},
		{name: "a name rule continuing to a ttl rule on the new name",
			rules: "rewrite continue name exact a.corp b.example.org\nrewrite ttl b.example.org 60", qname: "a.corp.", next: &echo{records: recs[:1]},
			seen: "b.example.org. A IN", answer: []string{"a.corp. 60 IN A 10.0.0.1"}, noFast: true},
	})
}

func TestTTLLeavesTheOPTAlone(t *testing.T) {
	h, _ := New(rulesOf(t, "rewrite ttl a.example.org 0"), &echo{})
	st := query("a.example.org.", dns.TypeA)
	st.Req.SetEdns0(1232, true)
	m := h.ServeDNS(context.Background(), st)
	if o := m.IsEdns0(); o == nil || !o.Do() {
		t.Errorf("reply OPT %v, want one with the DO bit", o)
	}
}

func TestRcode(t *testing.T) {
	runRewrite(t, []rewriteCase{
		{name: "SERVFAIL becomes NOERROR for a matching name",
			rules: "rewrite rcode regex (.*)\\.example\\.org SERVFAIL NOERROR", qname: "a.example.org.",
			next: &echo{records: []string{}, rcode: dns.RcodeServerFailure}, seen: "a.example.org. A IN", noFast: true},
		{name: "another rcode is left",
			rules: "rewrite rcode a.example.org 2 0", qname: "a.example.org.",
			next: &echo{records: []string{}, rcode: dns.RcodeNameError}, seen: "a.example.org. A IN", rcode: dns.RcodeNameError, noFast: true},
	})
}

// kubeZone is the cluster zone of testdata/cluster.yaml.
func kubeZone(t *testing.T) *zones.Zone {
	t.Helper()
	return zonetest.Zone(t, "testdata/cluster.yaml", zones.Options{Zones: []string{"cluster.local."}, TTL: 30})
}

const soaLocal = "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 0 7200 1800 86400 30"

func TestKubernetesBehindRewrite(t *testing.T) {
	z := kubeZone(t)
	tests := []struct {
		name, rules, qname string
		qtype              uint16
		rcode              int
		answer, ns, extra  []string
	}{
		{name: "substring answer auto: a service under another domain",
			rules: "rewrite name substring .corp.internal .svc.cluster.local answer auto", qname: "web.shop.corp.internal.", qtype: dns.TypeA,
			answer: []string{"web.shop.corp.internal. 30 IN A 10.96.1.1"}},
		{name: "exact: one name for a service",
			rules: "rewrite name exact web.example.com web.shop.svc.cluster.local", qname: "web.example.com.", qtype: dns.TypeA,
			answer: []string{"web.example.com. 30 IN A 10.96.1.1"}},
		{name: "prefix answer auto",
			rules: "rewrite name prefix www web answer auto", qname: "www.shop.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"www.shop.svc.cluster.local. 30 IN A 10.96.1.1"}},
		{name: "suffix answer auto maps the CNAME target and the records it leads to",
			rules: "rewrite name suffix .corp.internal .svc.cluster.local answer auto", qname: "alias.shop.corp.internal.", qtype: dns.TypeA,
			answer: []string{"alias.shop.corp.internal. 30 IN CNAME web.shop.corp.internal.", "web.shop.corp.internal. 30 IN A 10.96.1.1"}},
		{name: "substring answer auto maps the asked name only, as CoreDNS (the CNAME target stays internal)",
			rules: "rewrite name substring .corp.internal .svc.cluster.local answer auto", qname: "alias.shop.corp.internal.", qtype: dns.TypeA,
			answer: []string{"alias.shop.corp.internal. 30 IN CNAME web.shop.svc.cluster.local.", "web.shop.svc.cluster.local. 30 IN A 10.96.1.1"}},
		{name: "suffix answer auto maps SRV targets and their addresses",
			rules: "rewrite name suffix .corp.internal .svc.cluster.local answer auto", qname: "_http._tcp.web.shop.corp.internal.", qtype: dns.TypeSRV,
			answer: []string{"_http._tcp.web.shop.corp.internal. 30 IN SRV 0 100 80 web.shop.corp.internal."},
			extra:  []string{"web.shop.corp.internal. 30 IN A 10.96.1.1"}},
		{name: "regex with groups into the cluster zone",
			rules: `rewrite name regex (.*)\.(.*)\.corp\.internal\. {1}.{2}.svc.cluster.local answer name (.*)\.(.*)\.svc\.cluster\.local\. {1}.{2}.corp.internal`,
			qname: "web.shop.corp.internal.", qtype: dns.TypeA,
			answer: []string{"web.shop.corp.internal. 30 IN A 10.96.1.1"}},
		{name: "a name that does not exist is NXDOMAIN with the cluster zone's SOA",
			rules: "rewrite name suffix .corp.internal .svc.cluster.local answer auto", qname: "nope.shop.corp.internal.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{soaLocal}},
		{name: "type rewrite: AAAA of a service asked as A",
			rules: "rewrite continue name suffix .corp.internal .svc.cluster.local answer auto\nrewrite type AAAA A", qname: "web.shop.corp.internal.", qtype: dns.TypeAAAA,
			answer: []string{"web.shop.corp.internal. 30 IN A 10.96.1.1"}},
		{name: "ttl rewrite of the zone's answers",
			rules: "rewrite ttl suffix .svc.cluster.local 60-", qname: "web.shop.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"web.shop.svc.cluster.local. 60 IN A 10.96.1.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(rulesOf(t, tt.rules), kubernetes.New(z, nil, nil))
			if err != nil {
				t.Fatal(err)
			}
			st := query(tt.qname, tt.qtype)
			m := h.ServeDNS(context.Background(), st)
			if m.Rcode != tt.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.rcode])
			}
			if !m.Authoritative {
				t.Error("AA clear, want the zone's authoritative answer")
			}
			if m.Question[0].Name != tt.qname || m.Question[0].Qtype != tt.qtype {
				t.Errorf("question %v, want the asked one", m.Question[0])
			}
			for _, s := range []struct {
				name      string
				got, want []dns.RR
				w         []string
			}{{"answer", m.Answer, nil, tt.answer}, {"authority", m.Ns, nil, tt.ns}, {"additional", m.Extra, nil, tt.extra}} {
				if got, want := texts(s.got), normal(s.w); !slices.Equal(got, want) {
					t.Errorf("%s:\n got %q\nwant %q", s.name, got, want)
				}
			}
			if !st.NoFast {
				t.Error("NoFast clear: the fast path would keep a rewritten reply under the asked name")
			}
			if st.By != kubernetes.Name {
				t.Errorf("By = %q, want kubernetes", st.By)
			}
		})
	}
	// The zone's own records were not changed by the rewrites above.
	st := query("web.shop.svc.cluster.local.", dns.TypeA)
	m := kubernetes.New(z, nil, nil).ServeDNS(context.Background(), st)
	if got := texts(m.Answer); !slices.Equal(got, normal([]string{"web.shop.svc.cluster.local. 30 IN A 10.96.1.1"})) {
		t.Errorf("zone records changed by a rewrite: %q", got)
	}
}

func TestNoRulesMatchedCallsNextWithTheSameQuery(t *testing.T) {
	next := &echo{}
	h, _ := New(rulesOf(t, "rewrite name a.example b.example\nrewrite type MX A"), next)
	st := query("c.example.", dns.TypeA)
	r := st.Req
	h.ServeDNS(context.Background(), st)
	if next.seen != r || st.NoFast {
		t.Errorf("next saw a copy (%v) or NoFast set (%v) though no rule matched", next.seen != r, st.NoFast)
	}
}
