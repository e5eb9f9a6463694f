package main

import (
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeMetrics reads and parses r's /metrics.
func scrapeMetrics(t *testing.T, r *running) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + r.httpAddr(t, "/metrics") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	return families
}

// labelNames returns the label names of a family's series, histograms'
// le aside, failing when two series of it differ.
func labelNames(t *testing.T, f *dto.MetricFamily) string {
	t.Helper()
	var first string
	for i, m := range f.GetMetric() {
		var names []string
		for _, l := range m.GetLabel() {
			names = append(names, l.GetName())
		}
		sort.Strings(names)
		got := strings.Join(names, ",")
		if i == 0 {
			first = got
		} else if got != first {
			t.Errorf("%s: series with labels {%s} and {%s}", f.GetName(), first, got)
		}
	}
	return first
}

// value sums the counters, gauges and histogram counts of f's series that
// have the labels of match.
func value(f *dto.MetricFamily, match map[string]string) float64 {
	var total float64
	for _, m := range f.GetMetric() {
		have := make(map[string]string)
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		ok := true
		for k, v := range match {
			if got, found := have[k]; !found || got != v {
				ok = false
			}
		}
		if ok {
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

// With `names coredns`, the scrape has CoreDNS v1.14.7's families with
// exactly its label sets, so that its dashboards and alerts work
// unchanged; the svcdisc_dns_* families are gone, svcdisc's own extras
// stay.
func TestPrometheusNamesCoreDNSExportsCoreDNSFamiliesAndLabels(t *testing.T) {
	up := startUpstream(t)
	corefile := fmt.Sprintf(`. {
    errors
    prometheus 127.0.0.1:0 {
        names coredns
    }
    reload 10s
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . %s
    cache 30
    loadbalance
}
`, up.addr)
	r, path := serveCorefile(t, corefile)
	addr := r.in.dnsAddr()
	for range 2 { // forwarded, then from the cache
		if got := firstA(query(t, "udp", addr, "www.example.org.", dns.TypeA)); got != "192.0.2.1" {
			t.Fatalf("forwarded A = %q", got)
		}
	}
	if got := firstA(query(t, "tcp", addr, "web.shop.svc.cluster.local.", dns.TypeA)); got != "10.96.10.10" {
		t.Fatalf("cluster A over TCP = %q", got)
	}
	for range 3 { // the fast path, after the first
		if got := firstA(query(t, "udp", addr, "api.shop.svc.cluster.local.", dns.TypeA)); got != "10.96.10.20" {
			t.Fatalf("cluster A over UDP = %q", got)
		}
	}
	for range 2 { // with the DO bit, general path then fast path
		m := new(dns.Msg)
		m.SetQuestion("api.shop.svc.cluster.local.", dns.TypeAAAA)
		m.SetEdns0(1232, true)
		if _, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, addr); err != nil {
			t.Fatal(err)
		}
	}

	var families map[string]*dto.MetricFamily
	waitFor(t, 5*time.Second, "reload's corefile hash", func() bool { // set as reload starts watching
		families = scrapeMetrics(t, r)
		return families["coredns_reload_version_info"] != nil
	})
	want := map[string]string{
		"coredns_build_info":                           "goversion,revision,version",
		"coredns_dns_requests_total":                   "family,proto,server,type,view,zone",
		"coredns_dns_responses_total":                  "plugin,rcode,server,view,zone",
		"coredns_dns_request_duration_seconds":         "server,view,zone",
		"coredns_dns_request_size_bytes":               "proto,server,view,zone",
		"coredns_dns_response_size_bytes":              "proto,server,view,zone",
		"coredns_dns_do_requests_total":                "server,view,zone",
		"coredns_plugin_enabled":                       "name,server,view,zone",
		"coredns_cache_entries":                        "server,type,view,zones",
		"coredns_cache_requests_total":                 "server,view,zones",
		"coredns_cache_hits_total":                     "server,type,view,zones",
		"coredns_cache_misses_total":                   "server,view,zones",
		"coredns_cache_prefetch_total":                 "server,view,zones",
		"coredns_cache_served_stale_total":             "server,view,zones",
		"coredns_cache_evictions_total":                "server,type,view,zones",
		"coredns_proxy_request_duration_seconds":       "proxy_name,rcode,to",
		"coredns_proxy_healthcheck_failures_total":     "proxy_name,to",
		"coredns_forward_max_concurrent_rejects_total": "",
		"coredns_forward_healthcheck_broken_total":     "",
		"coredns_reload_failed_total":                  "",
		"coredns_reload_version_info":                  "hash,value",
	}
	var got []string
	for name, f := range families {
		switch {
		case strings.HasPrefix(name, "coredns_"):
			got = append(got, name)
			if w, ok := want[name]; ok {
				if l := labelNames(t, f); l != w {
					t.Errorf("%s has labels {%s}, want {%s}", name, l, w)
				}
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "view" && l.GetValue() != "" {
						t.Errorf("%s has view %q, want \"\"", name, l.GetValue())
					}
				}
			}
		case name == "svcdisc_dns_search_expansions_total", name == "svcdisc_dns_ratelimited_total":
			// CoreDNS has no such metric: exported in both namings.
		case strings.HasPrefix(name, "svcdisc_dns_"), strings.HasPrefix(name, "svcdisc_cache_"),
			name == "svcdisc_build_info", name == "svcdisc_forward_request_duration_seconds",
			name == "svcdisc_forward_max_concurrent_rejects_total":
			t.Errorf("%s is exported with names coredns: it has a CoreDNS name", name)
		}
	}
	sort.Strings(got)
	wantNames := slices.Sorted(func(yield func(string) bool) {
		for n := range want {
			if !yield(n) {
				return
			}
		}
	})
	if !slices.Equal(got, wantNames) {
		t.Errorf("coredns families:\n got %v\nwant %v", got, wantNames)
	}

	server := "dns://127.0.0.1:0" // the configured listen address, as CoreDNS labels it
	corefileData, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(corefileData)
	checks := []struct {
		family string
		match  map[string]string
		want   float64
	}{
		{"coredns_dns_requests_total", map[string]string{"server": server, "zone": ".", "view": "", "type": "A", "proto": "udp", "family": "1"}, 5},
		{"coredns_dns_requests_total", map[string]string{"type": "A", "proto": "tcp"}, 1},
		{"coredns_dns_requests_total", map[string]string{"type": "AAAA"}, 2},
		{"coredns_dns_responses_total", map[string]string{"plugin": "forward", "rcode": "NOERROR"}, 1},
		{"coredns_dns_responses_total", map[string]string{"plugin": "cache", "rcode": "NOERROR"}, 1},
		{"coredns_dns_responses_total", map[string]string{"plugin": "kubernetes"}, 6},
		{"coredns_dns_do_requests_total", map[string]string{"zone": "."}, 2},
		{"coredns_dns_request_duration_seconds", map[string]string{"zone": "."}, 8},
		{"coredns_dns_request_size_bytes", map[string]string{"proto": "udp"}, 7},
		{"coredns_plugin_enabled", map[string]string{"server": server, "zone": ".", "name": "kubernetes"}, 1},
		{"coredns_plugin_enabled", map[string]string{"name": "forward"}, 1},
		{"coredns_plugin_enabled", map[string]string{"name": "cache"}, 1},
		{"coredns_plugin_enabled", map[string]string{"name": "errors"}, 1},
		{"coredns_plugin_enabled", map[string]string{"name": "loadbalance"}, 1},
		{"coredns_plugin_enabled", map[string]string{"name": "prometheus"}, 1},
		{"coredns_cache_hits_total", map[string]string{"server": server, "zones": ".", "type": "success"}, 1},
		{"coredns_cache_hits_total", map[string]string{"type": "denial"}, 0},
		{"coredns_cache_misses_total", map[string]string{"zones": "."}, 1},
		{"coredns_cache_requests_total", map[string]string{"zones": "."}, 2},
		{"coredns_cache_entries", map[string]string{"type": "success"}, 1},
		{"coredns_proxy_request_duration_seconds", map[string]string{"proxy_name": "forward", "to": up.addr, "rcode": "NOERROR"}, 1},
		{"coredns_proxy_healthcheck_failures_total", map[string]string{"proxy_name": "forward", "to": up.addr}, 0},
		{"coredns_build_info", map[string]string{"version": versionString()}, 1},
		{"coredns_reload_version_info", map[string]string{"hash": "sha512", "value": hex.EncodeToString(sum[:])}, 1},
		// svcdisc's own metrics keep their names.
		{"svcdisc_forward_requests_total", map[string]string{"to": up.addr}, 1},
		{"svcdisc_kubernetes_synced", nil, 1},
	}
	for _, c := range checks {
		f := families[c.family]
		if f == nil {
			t.Errorf("%s missing", c.family)
			continue
		}
		if got := value(f, c.match); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.family, c.match, got, c.want)
		}
	}
}
