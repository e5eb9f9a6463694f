package log

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/plugin"
)

// rcodeHandler answers every query with its rcode.
type rcodeHandler int

func (rcodeHandler) Name() string { return "test" }
func (r rcodeHandler) ServeDNS(_ context.Context, st *plugin.State) *dns.Msg {
	return st.Error("test", int(r))
}

func TestLogWritesTheQueriesItsRulesSelect(t *testing.T) {
	tests := []struct {
		name   string
		rules  []config.LogRule
		qname  string
		rcode  int
		logged string // "" for nothing
	}{
		{"everything by default", []config.LogRule{{Name: ".", Format: config.LogFormat, Classes: []string{"all"}}},
			"www.example.org.", dns.RcodeSuccess,
			`192.0.2.7:5353 - 42 \"A IN www.example.org. udp 33 false 512\" NOERROR qr,rd 33 `},
		{"class error skips success", []config.LogRule{{Name: ".", Format: config.LogFormat, Classes: []string{"error"}}},
			"www.example.org.", dns.RcodeSuccess, ""},
		{"class error logs SERVFAIL", []config.LogRule{{Name: ".", Format: "{rcode} {name}", Classes: []string{"error"}}},
			"www.example.org.", dns.RcodeServerFailure, "SERVFAIL www.example.org."},
		{"class denial logs NXDOMAIN", []config.LogRule{{Name: ".", Format: "{rcode} {>id}", Classes: []string{"denial"}}},
			"nx.example.org.", dns.RcodeNameError, "NXDOMAIN 42"},
		{"a name outside the rule's zone", []config.LogRule{{Name: "example.com.", Format: "{name}", Classes: []string{"all"}}},
			"www.example.org.", dns.RcodeSuccess, ""},
		{"a name inside the rule's zone", []config.LogRule{{Name: "example.org.", Format: "{name} {type} {class} {proto}", Classes: []string{"all"}}},
			"WWW.Example.org.", dns.RcodeSuccess, "WWW.Example.org. A IN udp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			h := &Handler{Rules: tt.rules, Log: slog.New(slog.NewTextHandler(&buf, nil)), Next: rcodeHandler(tt.rcode)}
			r := new(dns.Msg)
			r.SetQuestion(tt.qname, dns.TypeA)
			r.Id = 42
			st := plugin.NewState(r, ".", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 5353}, "udp")
			h.ServeDNS(context.Background(), st)
			out := buf.String()
			if tt.logged == "" {
				if out != "" || st.NoFast {
					t.Errorf("logged %q (NoFast %v), want nothing", out, st.NoFast)
				}
				return
			}
			if !strings.Contains(out, tt.logged) {
				t.Errorf("logged %q, want it to contain %q", out, tt.logged)
			}
			if !st.NoFast {
				t.Error("a logged query must stay off the fast path, or repeats would not be logged")
			}
		})
	}
}
