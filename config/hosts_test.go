package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// parseBlock parses corefile and returns its first server block, or the
// error, checked to be a well-formed *Error.
func parseBlock(t *testing.T, corefile string) (Server, error) {
	t.Helper()
	c, err := Parse("Corefile", strings.NewReader(corefile))
	if err != nil {
		var e *Error
		if !errors.As(err, &e) || !wellFormed.MatchString(err.Error()) {
			t.Errorf("error %q is not a *Error of the form FILE:LINE: lower-case message", err)
		}
		return Server{}, err
	}
	return c.Servers[0], nil
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Parse succeeded, want error containing %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("Parse error = %q, want it to contain %q", err, want)
	}
}

// defaultHosts is what a bare hosts directive on line 2 of a "." block
// means.
func defaultHosts() *Hosts {
	return &Hosts{Path: "/etc/hosts", Zones: []string{"."}, TTL: 3600, Reload: 5 * time.Second, Line: 2}
}

func TestParseHosts(t *testing.T) {
	tests := []struct {
		name, in string
		want     func(h *Hosts)
		wantErr  string
	}{
		{name: "bare hosts reads /etc/hosts for the block's zones", in: ". {\n    hosts\n}\n", want: func(*Hosts) {}},
		{name: "a file and zones", in: ". {\n    hosts /etc/coredns/NodeHosts Example.org k8s.local. 10.0.0.0/8\n}\n", want: func(h *Hosts) {
			h.Path, h.Zones = "/etc/coredns/NodeHosts", []string{"example.org.", "k8s.local.", "10.in-addr.arpa."}
		}},
		{name: "a file without zones takes the block's", in: "a.example b.example {\n    hosts hosts.txt\n}\n", want: func(h *Hosts) {
			h.Path, h.Zones = "hosts.txt", []string{"a.example.", "b.example."}
		}},
		{name: "k3s NodeHosts block", in: ". {\n    hosts /etc/coredns/NodeHosts {\n      ttl 60\n      reload 15s\n      fallthrough\n    }\n}\n", want: func(h *Hosts) {
			h.Path, h.TTL, h.Reload, h.Fallthrough = "/etc/coredns/NodeHosts", 60, 15*time.Second, []string{"."}
		}},
		{name: "inline entries before fallthrough, blank lines ignored", in: ". {\n    hosts {\n        172.16.97.173 controller.sandbox.com\n        \n        fd00::1  a.example b.example # comment\n        fe80::1%eth0 link.example\n        fallthrough in-addr.arpa\n    }\n}\n", want: func(h *Hosts) {
			h.Inline = []string{"172.16.97.173 controller.sandbox.com", "fd00::1 a.example b.example", "fe80::1%eth0 link.example"}
			h.Fallthrough = []string{"in-addr.arpa."}
		}},
		{name: "every option", in: ". {\n    hosts /h {\n        ttl 65535\n        no_reverse\n        reload 0\n        fallthrough\n        fallthrough_unsupported\n    }\n}\n", want: func(h *Hosts) {
			h.Path, h.TTL, h.NoReverse, h.Reload, h.Fallthrough, h.FallthroughUnsupported = "/h", 65535, true, 0, []string{"."}, true
		}},
		{name: "reload in plain seconds", in: ". {\n    hosts {\n        reload 30\n    }\n}\n", want: func(h *Hosts) { h.Reload = 30 * time.Second }},

		{name: "hosts twice", in: ". {\n    hosts\n    hosts /x\n}\n", wantErr: "Corefile:3: hosts may appear once per server block"},
		{name: "ttl zero", in: ". {\n    hosts {\n        ttl 0\n    }\n}\n", wantErr: `Corefile:3: ttl: "0" is not a number between 1 and 65535`},
		{name: "ttl too large", in: ". {\n    hosts {\n        ttl 65536\n    }\n}\n", wantErr: `Corefile:3: ttl: "65536" is not a number between 1 and 65535`},
		{name: "ttl without a value", in: ". {\n    hosts {\n        ttl\n    }\n}\n", wantErr: "Corefile:3: ttl: want 1 argument(s), got 0"},
		{name: "negative reload", in: ". {\n    hosts {\n        reload -1s\n    }\n}\n", wantErr: `Corefile:3: reload: "-1s" is not a duration of at least 0s`},
		{name: "reload not a duration", in: ". {\n    hosts {\n        reload often\n    }\n}\n", wantErr: `Corefile:3: reload: "often" is not a duration`},
		{name: "no_reverse with an argument", in: ". {\n    hosts {\n        no_reverse yes\n    }\n}\n", wantErr: "Corefile:3: no_reverse: want 0 argument(s), got 1"},
		{name: "misspelled option", in: ". {\n    hosts {\n        10.0.0.1 a.example\n        fallthru\n    }\n}\n", wantErr: `Corefile:4: hosts: unknown option "fallthru": want an entry IP NAME..., ttl, no_reverse, reload, fallthrough or fallthrough_unsupported`},
		{name: "entry without a name", in: ". {\n    hosts {\n        10.0.0.1\n    }\n}\n", wantErr: `Corefile:3: hosts: entry "10.0.0.1" has no name: want IP NAME...`},
		{name: "entry after fallthrough", in: ". {\n    hosts {\n        fallthrough\n        10.0.0.1 a.example\n    }\n}\n", wantErr: `Corefile:4: hosts: entry "10.0.0.1" after fallthrough: write inline entries before fallthrough`},
		{name: "fallthrough_unsupported without fallthrough", in: ". {\n    hosts {\n        fallthrough_unsupported\n    }\n}\n", wantErr: "Corefile:2: hosts: fallthrough_unsupported needs fallthrough"},
		{name: "bad zone", in: ". {\n    hosts /etc/hosts ex!ample\n}\n", wantErr: `Corefile:2: hosts: "ex!ample" is not a valid zone name`},
		{name: "bad fallthrough zone", in: ". {\n    hosts {\n        fallthrough a..b\n    }\n}\n", wantErr: `Corefile:3: fallthrough: "a..b" is not a valid zone name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := parseBlock(t, tt.in)
			if tt.wantErr != "" {
				checkErr(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := defaultHosts()
			if srv.Zones[0] != "." {
				want.Zones = srv.Zones
			}
			tt.want(want)
			if !reflect.DeepEqual(srv.Hosts, want) {
				t.Errorf("Hosts = %+v\nwant    %+v", srv.Hosts, want)
			}
		})
	}
}
