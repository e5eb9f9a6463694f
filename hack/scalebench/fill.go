package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// newClient is a clientset that the client side never slows: the API
// server and etcd are what the fill measures. Protobuf, as the servers
// under test use.
func newClient(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 1e6, 1e6
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cfg.Timeout = 60 * time.Second
	return kubernetes.NewForConfig(cfg)
}

// retry calls f until it succeeds, the object exists already (a resumed
// fill), or 10 attempts failed: a loaded API server answers 429 or times
// out now and then.
func retry(ctx context.Context, f func() error) error {
	var err error
	for attempt := range 10 {
		if err = f(); err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	return err
}

// fillStats is what one fill did.
type fillStats struct {
	Services, Slices int
	Took             time.Duration
}

// Rate is the objects created a second (Services and EndpointSlices).
func (f fillStats) Rate() float64 {
	return float64(f.Services+f.Slices) / max(f.Took.Seconds(), 1e-9)
}

// fill creates the namespaces, then Services from..to-1 and their
// EndpointSlices through the API, with workers in parallel. The API server
// allocates the cluster IPs; nothing else runs (no controller-manager), so
// the slices are written here, as the EndpointSlice controller would.
func fill(ctx context.Context, c kubernetes.Interface, sh shape, from, to, workers int, log *slog.Logger) (fillStats, error) {
	t0 := time.Now()
	for i := range sh.Namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns-%d", i)}}
		if err := retry(ctx, func() error {
			_, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
			return err
		}); err != nil {
			return fillStats{}, fmt.Errorf("namespace %s: %w", ns.Name, err)
		}
	}
	var nSvc, nSlice atomic.Int64
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		var last int64
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				s, sl := nSvc.Load(), nSlice.Load()
				log.Info("fill", "services", from+int(s), "of", to, "slices", sl,
					"objects/s (last 10 s)", (s+sl-last)/10, "elapsed", time.Since(t0).Round(time.Second))
				last = s + sl
			}
		}
	}()
	defer close(done)

	work := make(chan int, workers)
	errs := make(chan error, workers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range work {
				v := sh.service(i)
				so := sh.serviceObject(v)
				if err := retry(ctx, func() error {
					_, err := c.CoreV1().Services(v.NS).Create(ctx, so, metav1.CreateOptions{})
					return err
				}); err != nil {
					errs <- fmt.Errorf("service %s/%s: %w", v.NS, v.Name, err)
					cancel()
					return
				}
				nSvc.Add(1)
				for _, sl := range sh.sliceObjects(v) {
					if err := retry(ctx, func() error {
						_, err := c.DiscoveryV1().EndpointSlices(v.NS).Create(ctx, sl, metav1.CreateOptions{})
						return err
					}); err != nil {
						errs <- fmt.Errorf("endpointslice %s/%s: %w", v.NS, sl.Name, err)
						cancel()
						return
					}
					nSlice.Add(1)
				}
			}
		})
	}
feed:
	for i := from; i < to; i++ {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fillStats{}, err
	}
	st := fillStats{Services: int(nSvc.Load()), Slices: int(nSlice.Load()), Took: time.Since(t0)}
	log.Info("filled", "services", to, "added", st.Services, "slices added", st.Slices,
		"took", st.Took.Round(time.Second), "objects/s", int(st.Rate()))
	return st, nil
}

// existing finds where an earlier fill of the same shape stopped: the
// highest Service index that exists (binary search, up to limit), less
// what the parallel workers may have left unfinished below it. fill skips
// what exists, so starting early is only a few wasted creates.
func existing(ctx context.Context, c kubernetes.Interface, sh shape, limit, workers int) (int, error) {
	has := func(i int) (bool, error) {
		v := sh.service(i)
		_, err := c.CoreV1().Services(v.NS).Get(ctx, v.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}
	lo, hi := 0, limit // svc-(lo-1) exists (or lo is 0); svc-hi does not (or hi is limit)
	for lo < hi {
		mid := (lo + hi) / 2
		ok, err := has(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return max(0, lo-4*workers), nil
}
