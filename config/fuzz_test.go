package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coredns/caddy/caddyfile"
)

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.Corefile"))
	if err != nil {
		f.Fatal(err)
	}
	// The corpus of real clusters' Corefiles.
	corpus, err := filepath.Glob(filepath.Join("..", "testdata", "corefiles", "*.Corefile"))
	if err != nil || len(corpus) == 0 {
		f.Fatalf("no corpus Corefiles: %v", err)
	}
	files = append(files, corpus...)
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(Default))
	for _, tt := range parseTests {
		f.Add([]byte(tt.input(f)))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		if bytes.Contains(data, []byte("import")) && bytes.ContainsAny(data, "/\\") {
			return // an import of a path: the fuzzer must not read the machine's files
		}
		cfg, err := Parse("Corefile", bytes.NewReader(data))
		if err != nil {
			if !wellFormed.MatchString(err.Error()) {
				t.Fatalf("error %q is not of the form FILE:LINE: lower-case message", err)
			}
			return
		}
		if len(cfg.Servers) == 0 {
			t.Fatal("no servers and no error")
		}
		for _, s := range cfg.Servers {
			if len(s.Zones) == 0 || s.Port == "" || s.Line < 1 {
				t.Fatalf("incomplete server %+v", s)
			}
			for _, z := range s.Zones {
				if !strings.HasSuffix(z, ".") || z != strings.ToLower(z) {
					t.Fatalf("zone %q is not normalised", z)
				}
			}
			if k := s.Kubernetes; k != nil && len(k.Zones) == 0 {
				t.Fatalf("kubernetes without zones in %+v", s)
			}
		}
		// Lines come from our own walk of the tokens; it must agree with
		// caddyfile about the blocks whenever no environment placeholder
		// can change the words.
		if bytes.Contains(data, []byte("{$")) || bytes.Contains(data, []byte("{%")) || bytes.Contains(data, []byte("import")) {
			return
		}
		blocks, err := caddyfile.Parse("Corefile", bytes.NewReader(data), nil)
		if err != nil {
			t.Fatalf("Parse succeeded but caddyfile.Parse failed: %v", err)
		}
		locs, err := locateBlocks("Corefile", lex("Corefile", data))
		if err != nil || !locationsMatch(locs, blocks) {
			t.Fatalf("block walk disagrees with caddyfile: %v, %+v vs %+v", err, locs, blocks)
		}
	})
}
