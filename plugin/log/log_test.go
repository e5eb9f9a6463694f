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
		quiet  bool   // a lookup the server makes on the client's behalf
	}{
		{"everything by default", []config.LogRule{{Name: ".", Format: config.LogFormat, Classes: []string{"all"}}},
			"www.example.org.", dns.RcodeSuccess,
			`192.0.2.7:5353 - 42 \"A IN www.example.org. udp 33 false 512\" NOERROR qr,rd 33 `, false},
		{"class error skips success", []config.LogRule{{Name: ".", Format: config.LogFormat, Classes: []string{"error"}}},
			"www.example.org.", dns.RcodeSuccess, "", false},
		{"class error logs SERVFAIL", []config.LogRule{{Name: ".", Format: "{rcode} {name}", Classes: []string{"error"}}},
			"www.example.org.", dns.RcodeServerFailure, "SERVFAIL www.example.org.", false},
		{"class denial logs NXDOMAIN", []config.LogRule{{Name: ".", Format: "{rcode} {>id}", Classes: []string{"denial"}}},
			"nx.example.org.", dns.RcodeNameError, "NXDOMAIN 42", false},
		{"a name outside the rule's zone", []config.LogRule{{Name: "example.com.", Format: "{name}", Classes: []string{"all"}}},
			"www.example.org.", dns.RcodeSuccess, "", false},
		{"a name inside the rule's zone", []config.LogRule{{Name: "example.org.", Format: "{name} {type} {class} {proto}", Classes: []string{"all"}}},
			"WWW.Example.org.", dns.RcodeSuccess, "WWW.Example.org. A IN udp", false},
		{"not a lookup autopath makes walking a client's search path", []config.LogRule{{Name: ".", Format: "{name}", Classes: []string{"all"}}},
			"www.example.org.svc.cluster.local.", dns.RcodeNameError, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			h := &Handler{Rules: tt.rules, Log: slog.New(slog.NewTextHandler(&buf, nil)), Next: rcodeHandler(tt.rcode)}
			r := new(dns.Msg)
			r.SetQuestion(tt.qname, dns.TypeA)
			r.Id = 42
			st := plugin.NewState(r, ".", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 5353}, "udp")
			ctx := context.Background()
			if tt.quiet {
				ctx = plugin.Quiet(ctx)
			}
			h.ServeDNS(ctx, st)
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
