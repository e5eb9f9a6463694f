package clients

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// inNetns runs fn on an OS thread moved into the network namespace of the
// process pid. Sockets fn opens belong to that namespace and keep working
// from any goroutine afterwards, so the test process can listen, query
// and fetch inside a namespace without a helper process.
func inNetns(pid int, fn func() error) error {
	target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return err
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		if err := setns(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		err = fn()
		// A thread that cannot go back stays locked, and so ends with
		// this goroutine instead of running other goroutines in the
		// namespace.
		if setns(self) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}

// relayInto listens on addr (host:port) inside the namespace of pid and
// relays each connection to the same address in the test's own namespace:
// the API server on the host's loopback becomes reachable, at the address
// its kubeconfig names, by the DNS servers in the namespace. TLS passes
// through untouched.
func relayInto(t *testing.T, pid int, addr string) {
	t.Helper()
	var ln net.Listener
	if err := inNetns(pid, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("relay for %s: %v", addr, err)
	}
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			track(c, true)
			track(u, true)
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(u, c)
				u.Close()
				track(u, false)
			}()
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, u)
				c.Close()
				track(c, false)
			}()
		}
	}()
}

// exchangeFrom sends one query from address from to from:53 inside the
// namespace of pid (on lo the server sees from as the client's address).
// edns and cd vary the query where a cache keys on them.
func exchangeFrom(pid int, from, name string, qtype uint16, edns, cd bool) (*dns.Msg, error) {
	var conn net.Conn
	if err := inNetns(pid, func() (err error) {
		d := net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}
		conn, err = d.Dial("udp", net.JoinHostPort(from, "53"))
		return err
	}); err != nil {
		return nil, err
	}
	co := &dns.Conn{Conn: conn}
	defer co.Close()
	_ = co.SetDeadline(time.Now().Add(2 * time.Second))
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.CheckingDisabled = cd
	if edns {
		m.SetEdns0(1232, false)
	}
	if err := co.WriteMsg(m); err != nil {
		return nil, err
	}
	r, err := co.ReadMsg()
	if err == nil && r.Id != m.Id {
		err = errors.New("reply to another query")
	}
	return r, err
}

// httpIn is an HTTP client whose connections are made inside the
// namespace of pid (the servers' metrics on its loopback).
func httpIn(pid int) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := inNetns(pid, func() (err error) {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		}},
	}
}
