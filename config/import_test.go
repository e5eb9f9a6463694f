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
