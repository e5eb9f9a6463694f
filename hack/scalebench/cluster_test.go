package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestShapeHasTheAdvertisedMix(t *testing.T) {
	sh := shape{Namespaces: 10, PerService: 10, Zone: "cluster.local"}
	c := sh.count(1000)
	pods := 0
	for i := range 1000 {
		pods += sh.service(i).Pods
	}
	if pods != 10*1000 {
		t.Errorf("Pods of 1000 Services = %d, want a mean of exactly 10 (10000)", pods)
	}
	if c.Headless != 100 || c.DualStack != 100 {
		t.Errorf("headless %d, dual-stack %d of 1000; want 100 each", c.Headless, c.DualStack)
	}
	if c.Endpoints <= pods || c.Slices <= 1000 {
		t.Errorf("endpoints %d, slices %d: dual-stack and big Services should add some", c.Endpoints, c.Slices)
	}
}

func TestSlicesHoldAtMost100EndpointsWithDistinctAddresses(t *testing.T) {
	sh := shape{Namespaces: 7, PerService: 10, Zone: "cluster.local"}
	seen := map[string]string{}
	slices, endpoints := 0, 0
	for i := range 300 {
		v := sh.service(i)
		for _, sl := range sh.sliceObjects(v) {
			slices++
			if len(sl.Endpoints) > maxSlice || len(sl.Endpoints) == 0 {
				t.Fatalf("%s has %d endpoints", sl.Name, len(sl.Endpoints))
			}
			if sl.Labels["kubernetes.io/service-name"] != v.Name {
				t.Fatalf("%s is not labelled for %s", sl.Name, v.Name)
			}
			for _, e := range sl.Endpoints {
				endpoints++
				a := e.Addresses[0]
				if other, dup := seen[a]; dup {
					t.Fatalf("address %s in %s and %s", a, other, sl.Name)
				}
				seen[a] = sl.Name
			}
		}
	}
	c := sh.count(300)
	if slices != c.Slices || endpoints != c.Endpoints {
		t.Errorf("built %d slices, %d endpoints; count says %d, %d", slices, endpoints, c.Slices, c.Endpoints)
	}
}

func TestHeadlessProbeAnswersAreTheReadyEndpoints(t *testing.T) {
	sh := shape{Namespaces: 3, PerService: 10, Zone: "cluster.local"}
	v := sh.service(8) // headless with hostnames, 11 Pods
	if !v.Headless || !v.Hostnames {
		t.Fatalf("service 8 = %+v, want headless with hostnames", v)
	}
	var ready []string
	for _, e := range sh.sliceObjects(v)[0].Endpoints {
		if *e.Conditions.Ready {
			ready = append(ready, e.Addresses[0])
		}
	}
	var want []string
	for _, a := range sh.readyAddrs(v) {
		want = append(want, a.String())
	}
	if strings.Join(ready, ",") != strings.Join(want, ",") || len(want) == v.Pods {
		t.Errorf("ready endpoints %v, readyAddrs %v (of %d; one in 20 is not ready)", ready, want, v.Pods)
	}
}

func TestQueryFilesAskOnlyClusterIPServicesOfTheStep(t *testing.T) {
	sh := shape{Namespaces: 5, PerService: 10, Zone: "cluster.local"}
	var a, nx bytes.Buffer
	if err := sh.writeA(&a, 40, 500); err != nil {
		t.Fatal(err)
	}
	if err := sh.writeNXDomain(&nx, 40, 500); err != nil {
		t.Fatal(err)
	}
	headless := map[string]bool{}
	for i := range 40 {
		if v := sh.service(i); v.Headless {
			headless[v.Name+"."+v.NS+"."] = true
		}
	}
	for name, buf := range map[string]*bytes.Buffer{"a": &a, "nxdomain": &nx} {
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 500 {
			t.Errorf("%s: %d lines, want 500", name, len(lines))
		}
		for _, l := range lines {
			for h := range headless {
				if strings.HasPrefix(l, h) {
					t.Fatalf("%s asks the headless Service %s", name, l)
				}
			}
			if !strings.HasSuffix(l, " A") {
				t.Fatalf("%s: %q is not an A query", name, l)
			}
		}
	}
}
