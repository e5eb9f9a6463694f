package metrics

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"

	"github.com/svcdisc/svcdisc/forward"
)

// gather returns each family of m with the sorted label names of its
// first series.
func gather(t *testing.T, m *Metrics) map[string]string {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string)
	for _, f := range families {
		out[f.GetName()] = labelNames(f.GetMetric()[0])
	}
	return out
}

func labelNames(m *dto.Metric) string {
	var names []string
	for _, l := range m.GetLabel() {
		names = append(names, l.GetName())
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func observeAll(m *Metrics) {
	m.Meters("dns://:53")(nil, "cluster.local.", dns.TypeA, dns.RcodeSuccess, "kubernetes", "udp", false).
		Observe(40, 1232, 100, true, time.Millisecond)
	m.ObserveUpstream("192.0.2.53:53", dns.RcodeSuccess, time.Millisecond, nil)
	m.CountReload("failed")
}

func TestNamesSelectTheFamiliesAndLabels(t *testing.T) {
	tests := []struct {
		names Names
		want  map[string]string // family → label names
		gone  []string
	}{
		{
			names: "", // svcdisc's, as before the option
			want: map[string]string{
				"svcdisc_dns_requests_total":               "family,proto,server,type,zone",
				"svcdisc_dns_responses_total":              "plugin,rcode,server,zone",
				"svcdisc_dns_request_duration_seconds":     "server,type,zone",
				"svcdisc_dns_request_size_bytes":           "proto,server,zone",
				"svcdisc_build_info":                       "version",
				"svcdisc_forward_request_duration_seconds": "rcode,to",
				"svcdisc_reload_total":                     "status",
			},
			gone: []string{"coredns_"},
		},
		{
			names: CoreDNS,
			want: map[string]string{
				"coredns_dns_requests_total":             "family,proto,server,type,view,zone",
				"coredns_dns_responses_total":            "plugin,rcode,server,view,zone",
				"coredns_dns_request_duration_seconds":   "server,view,zone",
				"coredns_dns_request_size_bytes":         "proto,server,view,zone",
				"coredns_dns_response_size_bytes":        "proto,server,view,zone",
				"coredns_dns_do_requests_total":          "server,view,zone",
				"coredns_build_info":                     "goversion,revision,version",
				"coredns_proxy_request_duration_seconds": "proxy_name,rcode,to",
				"coredns_reload_failed_total":            "",
				"svcdisc_reload_total":                   "status", // svcdisc's own: kept
			},
			gone: []string{"svcdisc_dns_", "svcdisc_build_info", "svcdisc_forward_request_duration_seconds"},
		},
	}
	for _, tt := range tests {
		t.Run(string(tt.names), func(t *testing.T) {
			m := New(Options{Version: "test", Names: tt.names})
			observeAll(m)
			got := gather(t, m)
			for name, labels := range tt.want {
				if l, ok := got[name]; !ok {
					t.Errorf("%s missing", name)
				} else if l != labels {
					t.Errorf("%s has labels {%s}, want {%s}", name, l, labels)
				}
			}
			for name := range got {
				for _, g := range tt.gone {
					if strings.HasPrefix(name, g) {
						t.Errorf("%s exported", name)
					}
				}
			}
		})
	}
}

func TestCoreDNSRequestSizeIsTheRequestsLengthNotTheBuffer(t *testing.T) {
	for _, tt := range []struct {
		names Names
		want  float64
	}{{SVCDisc, 1232}, {CoreDNS, 40}} {
		m := New(Options{Names: tt.names})
		observeAll(m)
		families, _ := m.Registry.Gather()
		for _, f := range families {
			if strings.HasSuffix(f.GetName(), "_dns_request_size_bytes") {
				if got := f.GetMetric()[0].GetHistogram().GetSampleSum(); got != tt.want {
					t.Errorf("%s: request size %v, want %v", tt.names, got, tt.want)
				}
			}
		}
	}
}

func TestFastPathMeterDoesNotAllocate(t *testing.T) {
	for _, names := range []Names{SVCDisc, CoreDNS} {
		m := New(Options{Names: names})
		mt := m.Meters("dns://:53")(nil, "cluster.local.", dns.TypeA, dns.RcodeSuccess, "kubernetes", "udp", true)
		if n := testing.AllocsPerRun(100, func() { mt.Observe(40, 1232, 100, true, time.Millisecond) }); n != 0 {
			t.Errorf("%s: %v allocations per query", names, n)
		}
	}
}

func TestTypesOutsideTheNamingsSetAreOther(t *testing.T) {
	for _, tt := range []struct {
		names Names
		qtype uint16
		want  string
	}{
		{SVCDisc, dns.TypeCAA, "CAA"},
		{SVCDisc, dns.TypeRRSIG, "other"},
		{CoreDNS, dns.TypeCAA, "other"},
		{CoreDNS, dns.TypeRRSIG, "RRSIG"},
		{CoreDNS, dns.TypeA, "A"},
	} {
		if got := New(Options{Names: tt.names}).typeLabel(tt.qtype); got != tt.want {
			t.Errorf("%s: type %d labelled %q, want %q", tt.names, tt.qtype, got, tt.want)
		}
	}
}

type failing struct{ err error }

func (f failing) Exchange(context.Context, *dns.Msg) (*dns.Msg, error) { return nil, f.err }

func TestCoreDNSCountsQueriesFindingEveryUpstreamDown(t *testing.T) {
	m := New(Options{Names: CoreDNS})
	_, _ = m.CountRejects(failing{forward.ErrNoHealthy}).Exchange(context.Background(), new(dns.Msg))
	_, _ = m.CountRejects(failing{forward.ErrLimit}).Exchange(context.Background(), new(dns.Msg))
	families, _ := m.Registry.Gather()
	got := map[string]float64{}
	for _, f := range families {
		got[f.GetName()] = f.GetMetric()[0].GetCounter().GetValue()
	}
	if got["coredns_forward_healthcheck_broken_total"] != 1 || got["coredns_forward_max_concurrent_rejects_total"] != 1 {
		t.Errorf("broken %v, rejects %v; want 1 and 1", got["coredns_forward_healthcheck_broken_total"],
			got["coredns_forward_max_concurrent_rejects_total"])
	}
}
