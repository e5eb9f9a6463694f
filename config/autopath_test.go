package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestAutoPathParses(t *testing.T) {
	tests := []struct {
		name, corefile string
		want           *AutoPath
		warning        string // in the block's warnings, "" for none
	}{
		{"@kubernetes with pods verified, zones from the block",
			"cluster.local {\n    autopath @kubernetes\n    kubernetes {\n        pods verified\n    }\n}\n",
			&AutoPath{Zones: []string{"cluster.local."}, Kubernetes: true, Line: 2}, ""},
		{"zones given before the source",
			". {\n    kubernetes cluster.local {\n        pods verified\n    }\n    autopath Cluster.Local @kubernetes\n    forward . 10.0.0.1\n}\n",
			&AutoPath{Zones: []string{"cluster.local."}, Kubernetes: true, Line: 5}, ""},
		{"@kubernetes without pods verified loads with a warning",
			". {\n    autopath @kubernetes\n    kubernetes cluster.local {\n        pods insecure\n    }\n}\n",
			&AutoPath{Zones: []string{"."}, Kubernetes: true, Line: 2}, "Corefile:2: autopath @kubernetes needs `pods verified`"},
		{"@kubernetes without kubernetes loads with a warning",
			". {\n    autopath @kubernetes\n    forward . 10.0.0.1\n}\n",
			&AutoPath{Zones: []string{"."}, Kubernetes: true, Line: 2}, "Corefile:2: autopath @kubernetes needs the kubernetes directive"},
		{"a resolv.conf file gives a fixed search path",
			". {\n    autopath testdata/autopath-resolv.conf\n    forward . 10.0.0.1\n}\n",
			&AutoPath{Zones: []string{"."}, ResolvConf: "testdata/autopath-resolv.conf",
				Search: []string{"corp.example.com.", "example.com."}, Line: 2}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("Corefile", strings.NewReader(tt.corefile))
			if err != nil {
				t.Fatal(err)
			}
			srv := cfg.Servers[0]
			if !reflect.DeepEqual(srv.AutoPath, tt.want) {
				t.Errorf("AutoPath = %+v, want %+v", srv.AutoPath, tt.want)
			}
			w := strings.Join(srv.Warnings, "\n")
			if tt.warning == "" && strings.Contains(w, "autopath") || !strings.Contains(w, tt.warning) {
				t.Errorf("warnings %q, want %q", w, tt.warning)
			}
		})
	}
}

func TestAutoPathErrors(t *testing.T) {
	tests := []struct{ name, corefile, want string }{
		{"no source", ". {\n    autopath\n    forward . 10.0.0.1\n}\n", "Corefile:2: autopath: want a resolv.conf file or @kubernetes"},
		{"another plugin", ". {\n    autopath @etcd\n    forward . 10.0.0.1\n}\n", "Corefile:2: autopath: @etcd: only @kubernetes"},
		{"a missing file", ". {\n    autopath testdata/no-such-resolv.conf\n    forward . 10.0.0.1\n}\n", "Corefile:2: autopath: reading testdata/no-such-resolv.conf"},
		{"twice", ". {\n    autopath @kubernetes\n    autopath @kubernetes\n    forward . 10.0.0.1\n}\n", "Corefile:3: autopath may appear once per server block"},
		{"a block", ". {\n    autopath @kubernetes {\n        foo\n    }\n    forward . 10.0.0.1\n}\n", "Corefile:3: autopath: takes no block"},
		{"a bad zone", ". {\n    autopath a..b @kubernetes\n    forward . 10.0.0.1\n}\n", "Corefile:2: autopath:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("Corefile", strings.NewReader(tt.corefile))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
