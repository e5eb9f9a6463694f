package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestImportReadsFilesGlobsAndSnippets(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "import", "Corefile"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Servers) != 2 {
		t.Fatalf("%d server blocks, want 2 (one imported by a glob)", len(cfg.Servers))
	}
	main, corp := cfg.Servers[0], cfg.Servers[1]
	if main.Errors == nil || main.Cache == nil || main.Kubernetes == nil {
		t.Errorf("the snippet's errors and cache are missing from the main block: %+v", main)
	}
	if len(main.Log) != 1 {
		t.Errorf("log from custom/log.override not imported: %+v", main.Log)
	}
	if len(corp.Zones) != 1 || corp.Zones[0] != "corp.example." || corp.Cache == nil || len(corp.Forwards) != 1 ||
		corp.Forwards[0].To[0] != "10.0.0.2" {
		t.Errorf("imported server block %+v, want corp.example. with the snippet and its forward", corp)
	}
}

func TestImportOfAGlobMatchingNothingIsNotAnError(t *testing.T) {
	if _, err := Load(filepath.Join("testdata", "import", "bad", "none.Corefile")); err != nil {
		t.Fatal(err)
	}
}

func TestAMistakeInAnImportedFileNamesThatFile(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "import", "bad", "bad.Corefile"))
	want := filepath.Join("testdata", "import", "bad", "bad.override") + `:3: bufsize: "100" is not a number between 512 and 4096`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %s", err, want)
	}
}

func TestAKeyOnAnotherPortIsAServerOfItsOwnWithTheSameDirectives(t *testing.T) {
	cfg, err := Parse("Corefile", strings.NewReader("a.example b.example:1053 c.example {\n    errors\n    forward . 10.0.0.1\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Servers) != 2 {
		t.Fatalf("%d servers, want one per port", len(cfg.Servers))
	}
	s53, s1053 := cfg.Servers[0], cfg.Servers[1]
	if s53.Port != "53" || strings.Join(s53.Zones, " ") != "a.example. c.example." ||
		s1053.Port != "1053" || strings.Join(s1053.Zones, " ") != "b.example." {
		t.Errorf("servers %v:%v and %v:%v", s53.Port, s53.Zones, s1053.Port, s1053.Zones)
	}
	if s53.Errors == nil || s1053.Errors == nil || len(s1053.Forwards) != 1 {
		t.Error("the second port lost the block's directives")
	}
}

func TestACIDROffALabelBoundaryIsEveryReverseZoneItCovers(t *testing.T) {
	tests := []struct {
		key, first, last string
		n                int
	}{
		{"10.96.0.0/12", "96.10.in-addr.arpa.", "111.10.in-addr.arpa.", 16},
		{"10.0.0.0/17", "0.0.10.in-addr.arpa.", "127.0.10.in-addr.arpa.", 128},
		{"10.0.0.0/8", "10.in-addr.arpa.", "10.in-addr.arpa.", 1},
		{"fd00::/7", "c.f.ip6.arpa.", "d.f.ip6.arpa.", 2},
	}
	for _, tt := range tests {
		cfg, err := Parse("Corefile", strings.NewReader(tt.key+" {\n    forward . 10.0.0.1\n}\n"))
		if err != nil {
			t.Fatal(err)
		}
		z := cfg.Servers[0].Zones
		if len(z) != tt.n || z[0] != tt.first || z[len(z)-1] != tt.last {
			t.Errorf("%s: %d zones %s … %s, want %d %s … %s", tt.key, len(z), z[0], z[len(z)-1], tt.n, tt.first, tt.last)
		}
	}
}

func TestDirectivesCoreDNSDroppedLoadWithAWarning(t *testing.T) {
	tests := []struct{ corefile, warning string }{
		{"cluster.local {\n    kubernetes example.org\n}\n", `Corefile:2: kubernetes: zone "example.org." is not inside the server block's zones`},
		{"local {\n    kubernetes notlocal\n}\n", `Corefile:2: kubernetes: zone "notlocal." is not inside`},
		{". {\n    federation cluster.local {\n        prod prod.example.com\n    }\n    forward . 10.0.0.1\n}\n", "Corefile:2: federation is ignored"},
		{". {\n    autopath @kubernetes\n    forward . 10.0.0.1\n}\n", "Corefile:2: autopath @kubernetes needs the kubernetes directive"},
		{". {\n    proxy . 10.0.0.1\n}\n", "Corefile:2: proxy is deprecated (removed from CoreDNS in 1.5): read as forward"},
	}
	for _, tt := range tests {
		cfg, err := Parse("Corefile", strings.NewReader(tt.corefile))
		if err != nil {
			t.Errorf("%q: %v", tt.corefile, err)
			continue
		}
		if w := strings.Join(cfg.Servers[0].Warnings, "\n"); !strings.Contains(w, tt.warning) {
			t.Errorf("%q: warnings %q, want %q", tt.corefile, w, tt.warning)
		}
	}
}
