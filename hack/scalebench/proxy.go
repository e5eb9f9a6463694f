package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"sync"

	"k8s.io/client-go/tools/clientcmd"
)

// apiProxy stands between the DNS servers and the API server, as the load
// balancer in front of a real control plane does: while the API server
// restarts it is held, so the servers' reconnections are refused until the
// new API server is ready, and then they relist from it. Without it, at
// 100,000 Services the servers' relists reach the restarted API server
// while its first ClusterIP repair runs, which then misses the one minute
// kube-apiserver allows it, and the API server exits.
type apiProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	held  bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// newAPIProxy listens on a free loopback port and forwards each connection
// to target (host:port).
func newAPIProxy(target string) (*apiProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &apiProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address the servers' kubeconfig names.
func (p *apiProxy) Addr() string { return p.ln.Addr().String() }

func (p *apiProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		if p.held {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.forward(c)
	}
}

// forward copies c to a new connection to the target and back until either
// side ends, or hold cuts c.
func (p *apiProxy) forward(c net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Either side's end ends both: a half-open API connection would
		// only hang the client.
		c.Close()
		up.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

// Hold cuts every open connection and refuses new ones until Release.
func (p *apiProxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held = true
	for c := range p.conns {
		c.Close()
	}
}

// Release lets connections through again.
func (p *apiProxy) Release() {
	p.mu.Lock()
	p.held = false
	p.mu.Unlock()
}

// Close stops the proxy and cuts its connections.
func (p *apiProxy) Close() error {
	err := p.ln.Close()
	p.Hold()
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// proxied starts a proxy to the API server of kubeconfig and writes, next
// to it (its certificate paths may be relative), a copy that names the
// proxy: the servers' kubeconfig.
func proxied(kubeconfig string) (*apiProxy, string, error) {
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		return nil, "", err
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.Clusters[ctx.Cluster] == nil {
		return nil, "", fmt.Errorf("%s: no cluster for the current context %q", kubeconfig, cfg.CurrentContext)
	}
	cluster := cfg.Clusters[ctx.Cluster]
	u, err := url.Parse(cluster.Server)
	if err != nil {
		return nil, "", fmt.Errorf("%s: server %q: %w", kubeconfig, cluster.Server, err)
	}
	p, err := newAPIProxy(u.Host)
	if err != nil {
		return nil, "", err
	}
	u.Host = p.Addr()
	cluster.Server = u.String()
	out := filepath.Join(filepath.Dir(kubeconfig), "kubeconfig-proxied")
	if err := clientcmd.WriteToFile(*cfg, out); err != nil {
		p.Close()
		return nil, "", err
	}
	return p, out, nil
}
