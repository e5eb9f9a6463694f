package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestEnvCommand(t *testing.T) {
	shop, err := os.ReadFile("testdata/env/shop.txt")
	if err != nil {
		t.Fatal(err)
	}
	master := "KUBERNETES_SERVICE_HOST=10.96.0.1\nKUBERNETES_SERVICE_PORT=443\nKUBERNETES_SERVICE_PORT_HTTPS=443\n" +
		"KUBERNETES_PORT=tcp://10.96.0.1:443\nKUBERNETES_PORT_443_TCP=tcp://10.96.0.1:443\nKUBERNETES_PORT_443_TCP_PROTO=tcp\n" +
		"KUBERNETES_PORT_443_TCP_PORT=443\nKUBERNETES_PORT_443_TCP_ADDR=10.96.0.1\n"
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // exact, when set
		has    []string
		not    []string
		stderr string
	}{
		{name: "a namespace's variables in kubelet's form, headless and ExternalName left out",
			args: []string{"-n", "shop"}, stdout: string(shop)},
		{name: "the web service is dual-stack: its primary IP only",
			args: []string{"-n", "shop"}, has: []string{"WEB_SERVICE_HOST=10.96.10.10\n", "WEB_PORT_443_TCP=tcp://10.96.10.10:443\n"}, not: []string{"fd00", "PAYMENTS_"}},
		{name: "service links off: only the master service",
			args: []string{"-n", "shop", "--no-service-links"}, stdout: master},
		{name: "a namespace without services still gets the master service",
			args: []string{"--namespace", "nothing-here"}, stdout: master},
		{name: "selected services across namespaces",
			args: []string{"-n", "default", "--services", "kube-dns.kube-system"}, has: []string{"KUBE_DNS_SERVICE_PORT_DNS_TCP=53\n", "KUBE_DNS_PORT_53_UDP=udp://10.96.0.10:53\n", "KUBERNETES_SERVICE_HOST=10.96.0.1\n"}, not: []string{"WEB_"}},
		{name: "missing namespace", args: nil, code: 1, stderr: `Required flag "namespace" not set`},
		{name: "both sources", args: []string{"-n", "shop", "--kubeconfig", "/nonexistent"}, code: 1, stderr: "--manifests and --kubeconfig exclude each other"},
		{name: "bad output format", args: []string{"-n", "shop", "-o", "yaml"}, code: 1, stderr: `-o "yaml" is not text or json`},
		{name: "bad services list", args: []string{"-n", "shop", "--services", "a.b.c"}, code: 1, stderr: `"a.b.c" is not name or name.namespace`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"svcdisc", "env", "--manifests", "../../examples"}, tt.args...)
			if code := run(args, &out, &errb); code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tt.code, errb.String())
			}
			if tt.stdout != "" && out.String() != tt.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), tt.stdout)
			}
			for _, h := range tt.has {
				if !strings.Contains(out.String(), h) {
					t.Errorf("stdout lacks %q:\n%s", h, out.String())
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out.String(), n) {
					t.Errorf("stdout has %q:\n%s", n, out.String())
				}
			}
			if !strings.Contains(errb.String(), tt.stderr) {
				t.Errorf("stderr %q does not say %q", errb.String(), tt.stderr)
			}
		})
	}
}

func TestEnvCommandJSON(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"svcdisc", "env", "--manifests", "../../examples", "-n", "shop", "-o", "json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var vars []struct{ Name, Value string }
	if err := json.Unmarshal(out.Bytes(), &vars); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	text, _ := os.ReadFile("testdata/env/shop.txt")
	var lines []string
	for _, v := range vars {
		lines = append(lines, v.Name+"="+v.Value)
	}
	if got := strings.Join(lines, "\n") + "\n"; got != string(text) {
		t.Errorf("json and text outputs differ:\n%s", got)
	}
}
