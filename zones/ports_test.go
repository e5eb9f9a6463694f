package zones

import (
	"runtime"
	"slices"
	"testing"
)

func TestCanonicalPortsSharesEqualListsOnly(t *testing.T) {
	http := Port{Name: "http", Protocol: "tcp", Port: 80}
	grpc := Port{Name: "grpc", Protocol: "tcp", Port: 9090}
	a := canonicalPorts([]Port{http, grpc})
	tests := []struct {
		name  string
		ports []Port
		same  bool
	}{
		{"an equal list", []Port{http, grpc}, true},
		{"the same ports in another order", []Port{grpc, http}, false},
		{"another number", []Port{http, {Name: "grpc", Protocol: "tcp", Port: 9091}}, false},
		{"another protocol", []Port{http, {Name: "grpc", Protocol: "udp", Port: 9090}}, false},
		{"a name that runs into the protocol", []Port{{Name: "httptcp", Protocol: "", Port: 80}, grpc}, false},
		{"a prefix of the list", []Port{http}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := canonicalPorts(slices.Clone(tt.ports))
			if !slices.Equal(got, tt.ports) || cap(got) != len(tt.ports) {
				t.Fatalf("canonicalPorts(%v) = %v (cap %d)", tt.ports, got, cap(got))
			}
			if same := &got[0] == &a[0]; same != tt.same {
				t.Errorf("shares the list of %v: %v, want %v", a, same, tt.same)
			}
		})
	}
	if got := canonicalPorts([]Port{}); got != nil {
		t.Errorf("canonicalPorts of no port = %#v, want nil", got)
	}
}

func TestCanonicalPortsForgetsListsNoObjectHolds(t *testing.T) {
	ports := []Port{{Name: "only-here", Protocol: "sctp", Port: 7}}
	key := portsKey(ports)
	held := canonicalPorts(ports)
	runtime.GC()
	if _, ok := portLists.Load(key); !ok {
		t.Fatal("a held list was forgotten")
	}
	runtime.KeepAlive(held)
	held = nil
	for range 100 {
		runtime.GC()
		if _, ok := portLists.Load(key); !ok {
			break
		}
		runtime.Gosched() // cleanups run on their own goroutine
	}
	if _, ok := portLists.Load(key); ok {
		t.Error("a list no object holds is still in the table")
	}
	if got := canonicalPorts(ports); !slices.Equal(got, ports) {
		t.Errorf("after it was forgotten, canonicalPorts(%v) = %v", ports, got)
	}
}
