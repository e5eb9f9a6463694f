package main

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echoServer answers each line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(l)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line through addr and reports whether it came back.
func roundTrip(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	l, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && l == "ping\n"
}

// The proxy forwards while released; held, it cuts open connections and
// refuses new ones, as a load balancer in front of a restarting API server
// whose readiness check fails; released, it forwards again.
func TestAPIProxyHoldsAndReleases(t *testing.T) {
	p, err := newAPIProxy(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !roundTrip(p.Addr()) {
		t.Fatal("no round trip through the proxy")
	}
	open, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if _, err := open.Write([]byte("x\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(open).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	p.Hold()
	_ = open.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := open.Read(make([]byte, 1)); err == nil {
		t.Error("an open connection survived the hold")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("an open connection was not cut by the hold")
	}
	if roundTrip(p.Addr()) {
		t.Error("a new connection went through while held")
	}
	p.Release()
	if !roundTrip(p.Addr()) {
		t.Error("no round trip after the release")
	}
}
