package harness

import (
	"net"
	"os"
	"strconv"
	"testing"
)

func TestFreePortsAreDistinctAndBindable(t *testing.T) {
	ports, err := FreePorts(4)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d twice in %v", p, ports)
		}
		seen[p] = true
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("TCP %s: %v", addr, err)
		}
		ln.Close()
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatalf("UDP %s: %v", addr, err)
		}
		pc.Close()
	}
}

func TestMemoryOfThisProcessAndOfNone(t *testing.T) {
	rss, hwm := Memory(os.Getpid())
	if rss <= 0 || hwm < rss {
		t.Errorf("this process: rss %d, hwm %d; want 0 < rss <= hwm", rss, hwm)
	}
	if rss, hwm := Memory(-1); rss != 0 || hwm != 0 {
		t.Errorf("no process: %d, %d; want zeros", rss, hwm)
	}
}
