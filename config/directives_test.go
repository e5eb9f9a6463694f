package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestDirectivesParse covers the directives parsed by their own files:
// each Corefile snippet goes in a ". { … }" block and must give want, or
// an error containing wantErr.
func TestDirectivesParse(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		get     func(Server) any
		want    any
		wantErr string
	}{
		{"dns64 defaults to the well-known prefix", "dns64", func(s Server) any { return *s.DNS64 },
			DNS64{Prefix: netip.MustParsePrefix("64:ff9b::/96")}, ""},
		{"dns64 with a prefix and options", "dns64 {\n        prefix 2001:db8::/32\n        translate_all\n        allow_ipv4\n    }",
			func(s Server) any { return *s.DNS64 }, DNS64{Prefix: netip.MustParsePrefix("2001:db8::/32"), TranslateAll: true, AllowIPv4: true}, ""},
		{"dns64 with a bad prefix length", "dns64 2001:db8::/33", nil, nil, `Corefile:2: dns64: prefix "2001:db8::/33" must be /32`},
		{"bufsize defaults to 1232", "bufsize", func(s Server) any { return s.BufSize }, 1232, ""},
		{"bufsize out of range", "bufsize 100", nil, nil, `Corefile:2: bufsize: "100" is not a number between 512 and 4096`},
		{"bind addresses and an interface with except", "bind 127.0.0.1 ::1 lo {\n        except ::1\n    }",
			func(s Server) any { return *s.Bind }, Bind{Addrs: []string{"127.0.0.1", "::1"}, Interfaces: []string{"lo"}, Except: []string{"::1"}}, ""},
		{"bind without address", "bind", nil, nil, "Corefile:2: bind: want at least one address"},
		{"chaos with version and authors", "chaos v1 alice bob", func(s Server) any { return *s.Chaos },
			Chaos{Version: "v1", Authors: []string{"alice", "bob"}}, ""},
		{"log names with a format", `log example.org example.com "{name} {rcode}"`, func(s Server) any { return s.Log },
			[]LogRule{{Name: "example.org.", Format: "{name} {rcode}", Classes: []string{"all"}},
				{Name: "example.com.", Format: "{name} {rcode}", Classes: []string{"all"}}}, ""},
		{"log class", "log . {combined} {\n        class denial error\n    }", func(s Server) any { return s.Log },
			[]LogRule{{Name: ".", Format: LogFormat + ` "{>opcode}"`, Classes: []string{"denial", "error"}}}, ""},
		{"errors consolidate", "errors {\n        consolidate 5m \".* i/o timeout$\" warning\n        stacktrace\n    }",
			func(s Server) any {
				c := s.Errors.Consolidate[0]
				return []any{c.Period, c.Regexp.String(), c.Level}
			}, []any{5 * time.Minute, ".* i/o timeout$", "warning"}, ""},
		{"errors consolidate with a bad regexp", "errors {\n        consolidate 5m (\n    }", nil, nil, `Corefile:3: consolidate: "(" is not a regular expression`},
		{"any and minimal", "any\n    minimal", func(s Server) any { return []bool{s.Any, s.Minimal} }, []bool{true, true}, ""},
		{"an unsupported directive says what to do", "dnssec", nil, nil, "Corefile:2: dnssec is not supported: svcdisc does not sign answers"},
		{"proxy is read as forward", "proxy . 10.0.0.1", func(s Server) any { return s.Forwards[0].To }, []string{"10.0.0.1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("Corefile", strings.NewReader(". {\n    "+tt.body+"\n}\n"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.get(cfg.Servers[0]); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestAOneLineBlockIsRead(t *testing.T) {
	cfg, err := Parse("Corefile", strings.NewReader(". {\n    health { lameduck 5s }\n    template ANY AAAA { rcode NOERROR }\n    forward . 10.0.0.1 { force_tcp }\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Servers[0]
	if s.Health.Lameduck != 5*time.Second || len(s.Templates) != 1 || !s.Forwards[0].ForceTCP {
		t.Errorf("one-line blocks lost: health %v, templates %d, force_tcp %v", s.Health, len(s.Templates), s.Forwards[0].ForceTCP)
	}
}

func TestAnUnknownDirectiveSuggestsTheNearestKnownOne(t *testing.T) {
	tests := []struct{ in, want string }{
		{"fowrard . 10.0.0.1", `Corefile:2: unknown directive "fowrard": did you mean forward?`},
		{"kubernets cluster.local", `Corefile:2: unknown directive "kubernets": did you mean kubernetes?`},
		{"frobnicate", `Corefile:2: unknown directive "frobnicate": the directives svcdisc knows are listed in its README`},
	}
	for _, tt := range tests {
		_, err := Parse("Corefile", strings.NewReader(". {\n    "+tt.in+"\n}\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.in, err, tt.want)
		}
	}
}
