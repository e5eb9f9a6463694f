package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// A restarted kube-apiserver repairs the ClusterIP allocations before it
// serves: each cluster IP without its IPAddress object is re-created, and
// that first repair must end within a minute or the API server exits. The
// running API server's repair loop deletes an IPAddress it sees without
// its Service once the address is 60 s old, and with the fill writing
// tens of thousands of objects into etcd its Service informer can lag that
// far behind: after the 100,000-Service fill it had deleted 5,840, and the
// restart for the relist failed. So before that restart the harness puts
// back what is missing, as the repair would, through the API.

// missingIPAddresses returns the IPAddress objects that the cluster IPs of
// svcs lack, given the addresses that have one.
func missingIPAddresses(svcs []corev1.Service, have map[netip.Addr]bool) []*networkingv1.IPAddress {
	var out []*networkingv1.IPAddress
	for _, s := range svcs {
		for _, ipStr := range s.Spec.ClusterIPs {
			a, err := netip.ParseAddr(ipStr)
			if err != nil || have[a] { // "None": headless
				continue
			}
			fam := "IPv4"
			if a.Is6() {
				fam = "IPv6"
			}
			out = append(out, &networkingv1.IPAddress{
				ObjectMeta: metav1.ObjectMeta{Name: a.String(), Labels: map[string]string{
					networkingv1.LabelIPAddressFamily: fam,
					networkingv1.LabelManagedBy:       "ipallocator.k8s.io",
				}},
				Spec: networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{
					Resource: "services", Namespace: s.Namespace, Name: s.Name}},
			})
		}
	}
	return out
}

// restoreIPAddresses creates the IPAddress objects the Services' cluster
// IPs lack, and checks again until none is missing (the running repair
// loop may still delete some meanwhile).
func restoreIPAddresses(ctx context.Context, c kubernetes.Interface, workers int, log *slog.Logger) error {
	for round := 1; ; round++ {
		have, err := usedIPs(ctx, c)
		if err != nil {
			return err
		}
		svcs, err := listServices(ctx, c)
		if err != nil {
			return err
		}
		missing := missingIPAddresses(svcs, have)
		if len(missing) == 0 {
			return nil
		}
		if round > 5 {
			return fmt.Errorf("%d cluster IPs still have no IPAddress after %d rounds", len(missing), round-1)
		}
		log.Info("restoring IPAddress objects the API server's repair deleted", "missing", len(missing), "round", round)
		if err := createIPAddresses(ctx, c, missing, workers); err != nil {
			return err
		}
		sleep(ctx, 5*time.Second)
	}
}

func listServices(ctx context.Context, c kubernetes.Interface) ([]corev1.Service, error) {
	var out []corev1.Service
	opts := metav1.ListOptions{Limit: 5000}
	for {
		l, err := c.CoreV1().Services("").List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list services: %w", err)
		}
		out = append(out, l.Items...)
		if l.Continue == "" {
			return out, nil
		}
		opts.Continue = l.Continue
	}
}

func createIPAddresses(ctx context.Context, c kubernetes.Interface, ips []*networkingv1.IPAddress, workers int) error {
	work := make(chan *networkingv1.IPAddress)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range workers {
		wg.Go(func() {
			for ip := range work {
				_, err := c.NetworkingV1().IPAddresses().Create(ctx, ip, metav1.CreateOptions{})
				if err != nil && !apierrors.IsAlreadyExists(err) {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("create ipaddress %s: %w", ip.Name, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, ip := range ips {
		select {
		case work <- ip:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}
