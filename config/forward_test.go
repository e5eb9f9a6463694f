package config

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// defaultForward is what `forward . TO…` parses to on line 2.
func defaultForward(to ...string) *Forward {
	return &Forward{From: ".", To: to, Policy: "random", MaxFails: 2, HealthCheck: 500 * time.Millisecond,
		HealthDomain: ".", Expire: 10 * time.Second, ReadTimeout: 2 * time.Second, Line: 2}
}

func TestParseForward(t *testing.T) {
	tests := []struct {
		name         string
		directive    string // on line 2 of a ". {" block
		want         func(f *Forward)
		wantErr      string
		wantWarnings []string // substrings, one per warning
	}{
		{name: "plain, dns://, IPv6 and resolv.conf upstreams",
			directive: "forward . 10.0.0.1 dns://10.0.0.2 dns://10.0.0.3:5353 [fd00::1]:53 ::2 /etc/resolv.conf dns:///etc/resolv.conf",
			want: func(f *Forward) {
				f.To = []string{"10.0.0.1", "dns://10.0.0.2", "dns://10.0.0.3:5353", "[fd00::1]:53", "::2", "/etc/resolv.conf", "dns:///etc/resolv.conf"}
			}},
		{name: "DNS over TLS with tls_servername",
			directive: "forward . tls://9.9.9.9 tls://149.112.112.112:853 tls://[2620:fe::fe] {\n tls_servername dns.quad9.net\n health_check 5s\n }",
			want: func(f *Forward) {
				f.To = []string{"tls://9.9.9.9", "tls://149.112.112.112:853", "tls://[2620:fe::fe]"}
				f.TLSServerName, f.HealthCheck = "dns.quad9.net", 5*time.Second
			}},
		{name: "DNS over TLS with the server name written with each upstream",
			directive: "forward . tls://9.9.9.9%dns.quad9.net tls://1.1.1.1%cloudflare-dns.com:853",
			want: func(f *Forward) {
				f.To = []string{"tls://9.9.9.9%dns.quad9.net", "tls://1.1.1.1%cloudflare-dns.com:853"}
			}},
		{name: "DNS over TLS mixed with plain DNS, as CoreDNS allows",
			directive: "forward . tls://9.9.9.9 8.8.8.8 {\n tls_servername dns.quad9.net\n }",
			want: func(f *Forward) {
				f.To, f.TLSServerName = []string{"tls://9.9.9.9", "8.8.8.8"}, "dns.quad9.net"
			}},
		{name: "DNS over TLS without a server name warns",
			directive:    "forward . tls://9.9.9.9",
			want:         func(f *Forward) { f.To = []string{"tls://9.9.9.9"} },
			wantWarnings: []string{"Corefile:2: forward: DNS over TLS without tls_servername"}},
		{name: "tls with 0 to 3 files",
			directive: "forward . tls://9.9.9.9 {\n tls cert.pem key.pem ca.pem\n tls_servername dns.quad9.net\n }",
			want: func(f *Forward) {
				f.To, f.TLSServerName = []string{"tls://9.9.9.9"}, "dns.quad9.net"
				f.TLS, f.TLSSet, f.TLSLine = []string{"cert.pem", "key.pem", "ca.pem"}, true, 3
			}},
		{name: "tls without files uses the system roots",
			directive: "forward . tls://9.9.9.9%dns.quad9.net {\n tls\n }",
			want: func(f *Forward) {
				f.To = []string{"tls://9.9.9.9%dns.quad9.net"}
				f.TLS, f.TLSSet, f.TLSLine = nil, true, 3
			}},
		{name: "every other option",
			directive: "forward example.org 10.0.0.1 10.0.0.2 {\n" +
				" except a.example.org B.example.org\n force_tcp\n prefer_udp\n expire 30s\n max_age 1m\n max_idle_conns 4\n" +
				" read_timeout 3s\n max_fails 0\n max_connect_attempts 3\n policy round_robin\n" +
				" health_check 1s no_rec domain Example.COM\n max_concurrent 1000\n next NXDOMAIN servfail\n next_on_nodata\n" +
				" failover SERVFAIL REFUSED\n failfast_all_unhealthy_upstreams\n source_address 10.0.0.9\n }",
			want: func(f *Forward) {
				*f = Forward{From: "example.org.", To: []string{"10.0.0.1", "10.0.0.2"}, Except: []string{"a.example.org.", "b.example.org."},
					ForceTCP: true, PreferUDP: true, Expire: 30 * time.Second, MaxAge: time.Minute, MaxIdleConns: 4,
					ReadTimeout: 3 * time.Second, MaxFails: 0, MaxConnectAttempts: 3, Policy: "round_robin",
					HealthCheck: time.Second, HealthNoRec: true, HealthDomain: "example.com.", MaxConcurrent: 1000,
					Next: []int{dns.RcodeNameError, dns.RcodeServerFailure}, NextOnNodata: true,
					Failover: []int{dns.RcodeServerFailure, dns.RcodeRefused}, FailFast: true,
					SourceAddress: netip.MustParseAddr("10.0.0.9"), Line: 2}
			}},
		{name: "expire 0 disables reuse", directive: "forward . 10.0.0.1 {\n expire 0s\n }",
			want: func(f *Forward) { f.To, f.Expire = []string{"10.0.0.1"}, 0 }},
		{name: "a repeated except adds zones", directive: "forward . 10.0.0.1 {\n except a.org\n except b.org\n }",
			want: func(f *Forward) { f.To, f.Except = []string{"10.0.0.1"}, []string{"a.org.", "b.org."} }},

		{name: "a hostname", directive: "forward . dns.google", wantErr: `Corefile:2: forward: "dns.google" is not an IP address or file`},
		{name: "a hostname that looks like an address", directive: "forward . 8.8.8.8.example", wantErr: `Corefile:2: forward: "8.8.8.8.example" is not an IP address or file`},
		{name: "a tls:// hostname", directive: "forward . tls://dns.google", wantErr: `Corefile:2: forward: "dns.google" is not an IP address or file`},
		{name: "DNS over HTTPS", directive: "forward . https://9.9.9.9", wantErr: `Corefile:2: forward: "https://9.9.9.9": DNS over HTTPS is not supported: use tls://`},
		{name: "another scheme", directive: "forward . grpc://9.9.9.9", wantErr: `Corefile:2: forward: "grpc://9.9.9.9": grpc:// is not supported`},
		{name: "an empty TLS server name", directive: "forward . tls://9.9.9.9%", wantErr: `Corefile:2: forward: "tls://9.9.9.9%": "" is not a TLS server name`},
		{name: "a port out of range", directive: "forward . 10.0.0.1:70000", wantErr: `Corefile:2: forward: "10.0.0.1:70000" is not an IP address or file`},
		{name: "both server names", directive: "forward . tls://9.9.9.9%dns.quad9.net {\n tls_servername other.net\n }",
			wantErr: `Corefile:3: tls_servername: "tls://9.9.9.9%dns.quad9.net" names its own TLS server name`},
		{name: "16 upstreams", directive: "forward . " + strings.Repeat("10.0.0.1 ", 16), wantErr: "Corefile:2: forward: at most 15 upstreams, got 16"},
		{name: "tls with 4 files", directive: "forward . tls://9.9.9.9 {\n tls a b c d\n }", wantErr: "Corefile:3: tls: want 0 to 3 arguments, got 4"},
		{name: "tls_servername without a name", directive: "forward . tls://9.9.9.9 {\n tls_servername\n }", wantErr: "Corefile:3: tls_servername: want 1 argument(s), got 0"},
		{name: "next without rcodes", directive: "forward . 10.0.0.1 {\n next\n }", wantErr: "Corefile:3: next: want at least one rcode"},
		{name: "next with a bad rcode", directive: "forward . 10.0.0.1 {\n next NXDOMIAN\n }", wantErr: `Corefile:3: next: "NXDOMIAN" is not an rcode`},
		{name: "failover NOERROR", directive: "forward . 10.0.0.1 {\n failover SERVFAIL NOERROR\n }", wantErr: "Corefile:3: failover: NOERROR cannot be used"},
		{name: "prefer_udp with an argument", directive: "forward . 10.0.0.1 {\n prefer_udp yes\n }", wantErr: "Corefile:3: prefer_udp: want 0 argument(s), got 1"},
		{name: "a bad expire", directive: "forward . 10.0.0.1 {\n expire soon\n }", wantErr: `Corefile:3: expire: "soon" is not a duration`},
		{name: "max_age under expire", directive: "forward . 10.0.0.1 {\n expire 30s\n max_age 10s\n }", wantErr: "Corefile:4: max_age: 10s is less than expire 30s"},
		{name: "a negative max_idle_conns", directive: "forward . 10.0.0.1 {\n max_idle_conns -1\n }", wantErr: `Corefile:3: max_idle_conns: "-1" is not a number of at least 0`},
		{name: "health_check with an unknown option", directive: "forward . 10.0.0.1 {\n health_check 1s fast\n }", wantErr: `Corefile:3: health_check: unknown option "fast": want no_rec or domain FQDN`},
		{name: "health_check domain without a name", directive: "forward . 10.0.0.1 {\n health_check 1s domain\n }", wantErr: "Corefile:3: health_check: domain wants a name"},
		{name: "a bad source_address", directive: "forward . 10.0.0.1 {\n source_address eth0\n }", wantErr: `Corefile:3: source_address: "eth0" is not an IP address`},
		{name: "resolver", directive: "forward . 10.0.0.1 {\n resolver 10.0.0.53\n }", wantErr: "Corefile:3: resolver: not supported: svcdisc does not resolve hostname upstreams; write their IP addresses"},
		{name: "doh_method", directive: "forward . 10.0.0.1 {\n doh_method GET\n }", wantErr: "Corefile:3: doh_method: DNS over HTTPS is not supported: use a tls:// upstream"},
		{name: "the sequential policy's old name", directive: "forward . 10.0.0.1 {\n policy first\n }", wantErr: `Corefile:3: policy: unknown policy "first"`},

		{name: "proxy with the options forward honours",
			directive: "proxy . 10.0.0.1:53 /etc/resolv.conf {\n policy first\n max_fails 3\n except cluster.local\n spray\n protocol dns force_tcp\n }",
			want: func(f *Forward) {
				f.To, f.Policy, f.MaxFails, f.Except, f.ForceTCP = []string{"10.0.0.1:53", "/etc/resolv.conf"}, "sequential", 3, []string{"cluster.local."}, true
			}},
		{name: "proxy warns once per ignored option",
			directive: "proxy . 10.0.0.1 {\n policy least_conn\n fail_timeout 5s\n health_check /health:8080 4s\n protocol dns\n }",
			want:      func(f *Forward) { f.To = []string{"10.0.0.1"} },
			wantWarnings: []string{
				"Corefile:3: proxy: policy is ignored: least_conn is read as random",
				"Corefile:4: proxy: fail_timeout is ignored",
				"Corefile:5: proxy: health_check is ignored: forward checks upstreams with DNS queries, not HTTP",
			}},
		{name: "proxy over https_google", directive: "proxy . 8.8.8.8:53 {\n protocol https_google\n }",
			wantErr: "Corefile:3: protocol https_google: not supported: use forward with tls:// upstreams (DNS over TLS) instead"},
		{name: "proxy over grpc", directive: "proxy . 10.0.0.1:443 {\n protocol grpc insecure\n }",
			wantErr: "Corefile:3: protocol grpc: not supported: use forward with tls:// upstreams"},
		{name: "proxy with a forward option", directive: "proxy . 10.0.0.1 {\n tls_servername x.org\n }",
			wantErr: `Corefile:3: proxy: unknown option "tls_servername" (proxy takes policy, fail_timeout, max_fails, health_check, except, spray, protocol; for more write forward)`},
		{name: "proxy to tls://", directive: "proxy . tls://9.9.9.9", wantErr: `Corefile:2: proxy: "tls://9.9.9.9": proxy did not speak DNS over TLS: use forward`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ". {\n    " + strings.ReplaceAll(tt.directive, "\n ", "\n        ") + "\n}\n"
			got, err := Parse("Corefile", strings.NewReader(in))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse succeeded, want error containing %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
				}
				if !wellFormed.MatchString(err.Error()) {
					t.Errorf("error %q is not FILE:LINE: lower-case message", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			srv := got.Servers[0]
			want := defaultForward()
			tt.want(want)
			if len(srv.Forwards) != 1 || !reflect.DeepEqual(srv.Forwards[0], want) {
				t.Errorf("got  %+v\nwant %+v", *srv.Forwards[0], *want)
			}
			warnings := slices.DeleteFunc(slices.Clone(srv.Warnings), func(w string) bool { return strings.Contains(w, "is deprecated") })
			if len(warnings) != len(tt.wantWarnings) {
				t.Fatalf("warnings %q, want %q", warnings, tt.wantWarnings)
			}
			for i, w := range tt.wantWarnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %q, want it to contain %q", warnings[i], w)
				}
			}
		})
	}
}

func TestProxyIsDeprecated(t *testing.T) {
	got, err := Parse("Corefile", strings.NewReader(". {\n    proxy . 10.0.0.1\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := got.Servers[0].Warnings; len(w) != 1 || !strings.Contains(w[0], "Corefile:2: proxy is deprecated") {
		t.Errorf("warnings %q", w)
	}
}

func TestIsResolvConf(t *testing.T) {
	for in, want := range map[string]bool{
		"/etc/resolv.conf": true, "dns:///etc/resolv.conf": true, "resolv/conf": true,
		"tls://1.1.1.1": false, "dns://1.1.1.1": false, "1.1.1.1": false, "tls:///etc/resolv.conf": false,
	} {
		if got := IsResolvConf(in); got != want {
			t.Errorf("IsResolvConf(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestForwardOfTheSameZoneTwice(t *testing.T) {
	tests := []struct {
		name, in string
		warn     bool
	}{
		{"after a forward with next it gets what is handed on", ". {\n    forward . 1.1.1.1 {\n        next NXDOMAIN\n    }\n    forward . 8.8.8.8\n}\n", false},
		{"after a forward without next it is warned about", ". {\n    forward . 1.1.1.1\n    forward . 8.8.8.8\n}\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("Corefile", strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			srv := got.Servers[0]
			if len(srv.Forwards) != 2 {
				t.Fatalf("%d forwards, want 2", len(srv.Forwards))
			}
			if warned := len(srv.Warnings) == 1 && strings.Contains(srv.Warnings[0], "is already forwarded on line 2"); warned != tt.warn {
				t.Errorf("warnings %q, want a warning: %v", srv.Warnings, tt.warn)
			}
		})
	}
}
