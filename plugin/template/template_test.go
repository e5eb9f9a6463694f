package template

import (
	"context"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/plugin"
)

// nextHandler marks queries handed on: it answers REFUSED with By "next".
type nextHandler struct{}

func (nextHandler) Name() string { return "next" }
func (nextHandler) ServeDNS(_ context.Context, st *plugin.State) *dns.Msg {
	return st.Error("next", dns.RcodeRefused)
}

// chainOf builds handlers for ts in file order in front of nextHandler.
func chainOf(t *testing.T, ts ...config.Template) plugin.Handler {
	t.Helper()
	var next plugin.Handler = nextHandler{}
	for _, tc := range slices.Backward(ts) {
		if tc.Zones == nil {
			tc.Zones = []string{"."}
		}
		if tc.Match == nil {
			tc.Match = []*regexp.Regexp{regexp.MustCompile(".*")}
		}
		h, err := New(&tc, next)
		if err != nil {
			t.Fatal(err)
		}
		next = h
	}
	return next
}

func rrs(section []dns.RR) []string {
	var out []string
	for _, rr := range section {
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	return out
}

func ask(h plugin.Handler, name string, qtype, qclass uint16, edns bool) (*dns.Msg, *plugin.State) {
	r := new(dns.Msg)
	r.SetQuestion(name, qtype)
	r.Question[0].Qclass = qclass
	if edns {
		r.SetEdns0(1232, false)
	}
	st := plugin.NewState(r, ".", &net.UDPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5353}, "udp")
	return h.ServeDNS(context.Background(), st), st
}

var ipA = config.Template{
	Class: dns.ClassINET, Type: dns.TypeA, Zones: []string{"example."},
	Match:  []*regexp.Regexp{regexp.MustCompile(`^ip-(?P<a>[0-9]+)-(?P<b>[0-9]+)[.]example[.]$`), regexp.MustCompile(`^(?P<a>[0-9]+)[.](?P<b>[0-9]+)[.]ext[.]example[.]$`)},
	Answer: []string{"{{ .Name }} 60 IN A 10.0.{{ .Group.a }}.{{ .Group.b }}"},
}

func TestTemplate(t *testing.T) {
	withFall := ipA
	withFall.Fallthrough = []string{"."}
	hexA := config.Template{Class: dns.ClassINET, Type: dns.TypeA, Match: []*regexp.Regexp{regexp.MustCompile(`^ip0a(?P<b>[a-f0-9]{2})[.]`)},
		Answer: []string{"{{ .Name }} 60 IN A 10.{{ parseInt .Group.b 16 8 }}.0.1"}}
	mx := config.Template{Class: dns.ClassINET, Type: dns.TypeMX, Zones: []string{"example."},
		Answer:     []string{"{{ .Name }} 60 IN MX 10 mail.{{ .Zone }}"},
		Additional: []string{"mail.{{ .Zone }} 60 IN A 192.0.2.25"},
		Authority:  []string{"{{ .Zone }} 60 IN NS ns0.{{ .Zone }}", "{{ .Zone }} 60 IN NS ns1.{{ .Zone }}"}}
	invalid := config.Template{Class: dns.ClassANY, Type: dns.TypeANY, Zones: []string{"invalid."}, Rcode: dns.RcodeNameError,
		Authority: []string{"invalid. 60 {{ .Class }} SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60)"}}
	noAAAA := config.Template{Class: dns.ClassANY, Type: dns.TypeAAAA}
	data := config.Template{Class: dns.ClassINET, Type: dns.TypeTXT,
		Answer: []string{`{{ .Name }} 60 IN TXT "{{ .Type }} {{ .Class }} {{ .Remote }} {{ .Question.Name }} {{ index .Match 0 }} {{ .Message.Id | printf "%T" }} [{{ .Meta "kubernetes/client-namespace" }}]"`}}
	servfail := config.Template{Class: dns.ClassINET, Type: dns.TypeA, Zones: []string{"fail."}, Rcode: dns.RcodeServerFailure,
		Answer: []string{"{{ .Name }} 60 IN A 192.0.2.1"}}
	broken := config.Template{Class: dns.ClassINET, Type: dns.TypeA, Zones: []string{"broken."}, Answer: []string{"{{ .Name }} 60 IN A not-an-address"}}

	tests := []struct {
		name      string
		ts        []config.Template
		qname     string
		qtype     uint16
		qclass    uint16
		edns      bool
		rcode     int
		by        string
		aa        bool
		answer    []string
		authority []string
		extra     []string
	}{
		{name: "first expression matches, named groups", ts: []config.Template{ipA}, qname: "ip-1-2.example.", qtype: dns.TypeA, by: Name, aa: true,
			answer: []string{"ip-1-2.example. 60 IN A 10.0.1.2"}},
		{name: "second expression matches", ts: []config.Template{ipA}, qname: "3.4.ext.example.", qtype: dns.TypeA, by: Name, aa: true,
			answer: []string{"3.4.ext.example. 60 IN A 10.0.3.4"}},
		{name: "no expression matches: SERVFAIL without fallthrough", ts: []config.Template{ipA}, qname: "www.example.", qtype: dns.TypeA,
			rcode: dns.RcodeServerFailure, by: Name},
		{name: "no expression matches: fallthrough hands on", ts: []config.Template{withFall}, qname: "www.example.", qtype: dns.TypeA,
			rcode: dns.RcodeRefused, by: "next"},
		{name: "other type goes on", ts: []config.Template{ipA}, qname: "ip-1-2.example.", qtype: dns.TypeAAAA, rcode: dns.RcodeRefused, by: "next"},
		{name: "other class goes on", ts: []config.Template{ipA}, qname: "ip-1-2.example.", qtype: dns.TypeA, qclass: dns.ClassCHAOS, rcode: dns.RcodeRefused, by: "next"},
		{name: "query of type ANY matches, .Type is the template's", ts: []config.Template{ipA}, qname: "ip-1-2.example.", qtype: dns.TypeANY, by: Name, aa: true,
			answer: []string{"ip-1-2.example. 60 IN A 10.0.1.2"}},
		{name: "other zone goes on", ts: []config.Template{ipA}, qname: "ip-1-2.example.org.", qtype: dns.TypeA, rcode: dns.RcodeRefused, by: "next"},
		{name: "names are matched in lower case", ts: []config.Template{ipA}, qname: "IP-1-2.Example.", qtype: dns.TypeA, by: Name, aa: true,
			answer: []string{"ip-1-2.example. 60 IN A 10.0.1.2"}},
		{name: "parseInt", ts: []config.Template{hexA}, qname: "ip0a7b.example.", qtype: dns.TypeA, by: Name, aa: true,
			answer: []string{"ip0a7b.example. 60 IN A 10.123.0.1"}},
		{name: "templates in file order: a fallthrough template hands on to the next", ts: []config.Template{withFall, mx}, qname: "www.example.", qtype: dns.TypeMX,
			by: Name, aa: true, answer: []string{"www.example. 60 IN MX 10 mail.example."},
			authority: []string{"example. 60 IN NS ns0.example.", "example. 60 IN NS ns1.example."},
			extra:     []string{"mail.example. 60 IN A 192.0.2.25"}},
		{name: "rcode and authority: NXDOMAIN with an SOA, any class", ts: []config.Template{invalid}, qname: "foo.invalid.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS,
			rcode: dns.RcodeNameError, by: Name, aa: true, authority: []string{"invalid. 60 CH SOA ns.invalid. hostmaster.invalid. 1 60 60 60 60"}},
		{name: "AAAA filtering: empty NOERROR for AAAA", ts: []config.Template{noAAAA}, qname: "www.google.com.", qtype: dns.TypeAAAA, by: Name, aa: true},
		{name: "AAAA filtering: A goes on", ts: []config.Template{noAAAA}, qname: "www.google.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused, by: "next"},
		{name: "template data", ts: []config.Template{data}, qname: "Data.Example.", qtype: dns.TypeTXT, by: Name, aa: true,
			answer: []string{`data.example. 60 IN TXT "TXT IN 192.0.2.7 Data.Example. data.example. uint16 []"`}},
		{name: "rcode SERVFAIL is a bare SERVFAIL", ts: []config.Template{servfail}, qname: "x.fail.", qtype: dns.TypeA, rcode: dns.RcodeServerFailure, by: Name},
		{name: "a template making no valid record is SERVFAIL", ts: []config.Template{broken}, qname: "x.broken.", qtype: dns.TypeA, rcode: dns.RcodeServerFailure, by: Name},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.qclass == 0 {
				tt.qclass = dns.ClassINET
			}
			m, st := ask(chainOf(t, tt.ts...), tt.qname, tt.qtype, tt.qclass, tt.edns)
			if m.Rcode != tt.rcode || st.By != tt.by {
				t.Fatalf("rcode %s by %q, want %s by %q (err %v)", dns.RcodeToString[m.Rcode], st.By, dns.RcodeToString[tt.rcode], tt.by, st.Err)
			}
			if m.Authoritative != tt.aa {
				t.Errorf("AA = %v, want %v", m.Authoritative, tt.aa)
			}
			if got := rrs(m.Answer); !slices.Equal(got, tt.answer) {
				t.Errorf("answer = %q, want %q", got, tt.answer)
			}
			if got := rrs(m.Ns); !slices.Equal(got, tt.authority) {
				t.Errorf("authority = %q, want %q", got, tt.authority)
			}
			if got := rrs(m.Extra); !slices.Equal(got, tt.extra) {
				t.Errorf("additional = %q, want %q", got, tt.extra)
			}
			if tt.aa && !st.NoFast {
				t.Errorf("NoFast not set on a templated reply")
			}
			if _, err := m.Pack(); err != nil {
				t.Errorf("reply does not pack: %v", err)
			}
		})
	}
}

func TestTemplateErrorIsReported(t *testing.T) {
	h := chainOf(t, config.Template{Class: dns.ClassINET, Type: dns.TypeA, Answer: []string{"{{ .Nope }} 60 IN A 192.0.2.1"}, Line: 7})
	m, st := ask(h, "a.example.", dns.TypeA, dns.ClassINET, false)
	if m.Rcode != dns.RcodeServerFailure || st.Err == nil || !strings.Contains(st.Err.Error(), "line 7") {
		t.Fatalf("rcode %s err %v: want SERVFAIL with an error naming line 7", dns.RcodeToString[m.Rcode], st.Err)
	}
}

func TestExtendedError(t *testing.T) {
	h := chainOf(t, config.Template{Class: dns.ClassANY, Type: dns.TypeANY, Rcode: dns.RcodeNameError, EDE: &config.EDE{Code: 21, Reason: "Blocked"}})
	m, _ := ask(h, "a.invalid.", dns.TypeA, dns.ClassINET, true)
	opt := m.IsEdns0()
	if opt == nil || len(opt.Option) != 1 {
		t.Fatalf("OPT %v: want one option", opt)
	}
	if e, ok := opt.Option[0].(*dns.EDNS0_EDE); !ok || e.InfoCode != 21 || e.ExtraText != "Blocked" {
		t.Errorf("option %v, want EDE 21 Blocked", opt.Option[0])
	}
	m, _ = ask(h, "a.invalid.", dns.TypeA, dns.ClassINET, false)
	if m.IsEdns0() != nil {
		t.Errorf("reply to a query without EDNS has an OPT")
	}
}

func TestCNAMEIsChased(t *testing.T) {
	cname := config.Template{Class: dns.ClassINET, Type: dns.TypeANY, Zones: []string{"foogle.com."},
		Answer: []string{"foogle.com. 60 IN CNAME google.com."}}
	loop := config.Template{Class: dns.ClassINET, Type: dns.TypeANY, Zones: []string{"loop."},
		Answer: []string{"{{ .Name }} 60 IN CNAME {{ .Name }}"}}
	h := chainOf(t, cname, loop)
	var lookups int
	h.(*Handler).Lookup = func(ctx context.Context, _ *plugin.State, name string, qtype uint16) *dns.Msg {
		lookups++
		if name != "google.com." {
			t.Errorf("looked up %s", name)
		}
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		rr, _ := dns.NewRR("google.com. 300 IN A 192.0.2.80")
		m.Answer = []dns.RR{rr}
		return m
	}
	m, _ := ask(h, "foogle.com.", dns.TypeA, dns.ClassINET, false)
	want := []string{"foogle.com. 60 IN CNAME google.com.", "google.com. 300 IN A 192.0.2.80"}
	if got := rrs(m.Answer); !slices.Equal(got, want) {
		t.Errorf("answer = %q, want %q", got, want)
	}
	if m, _ = ask(h, "foogle.com.", dns.TypeTXT, dns.ClassINET, false); len(m.Answer) != 1 || lookups != 1 {
		t.Errorf("TXT query: answer %v after %d lookups: the CNAME is chased for A and AAAA only", m.Answer, lookups)
	}

	// A template whose CNAME points at itself stops after a few rounds.
	second := h.(*Handler).next.(*Handler)
	rounds := 0
	second.Lookup = func(ctx context.Context, _ *plugin.State, name string, qtype uint16) *dns.Msg {
		rounds++
		r := new(dns.Msg)
		r.SetQuestion(name, qtype)
		return second.ServeDNS(ctx, plugin.NewState(r, ".", nil, "udp"))
	}
	if m, _ = ask(h, "a.loop.", dns.TypeA, dns.ClassINET, false); rounds != plugin.MaxLookups || len(m.Answer) != plugin.MaxLookups+1 {
		t.Errorf("looping CNAME: %d lookups, %d records, want %d and %d", rounds, len(m.Answer), plugin.MaxLookups, plugin.MaxLookups+1)
	}
}
