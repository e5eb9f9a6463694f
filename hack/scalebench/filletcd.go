package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
)

// Why etcd: kube-apiserver 1.37's ClusterIP allocator (IPAddress objects,
// MultiCIDRServiceAllocator, locked on) recounts every IPAddress after each
// allocation (Allocator.Used, twice, for a metric): a Service create costs
// O(Services) CPU, and filling 100,000 takes hours on 2 cores. So -fill
// etcd writes what the API server would have stored (Services with their
// cluster IPs, the IPAddress objects that reserve them, EndpointSlices)
// straight into etcd, in protobuf, under the API server's keys; the API
// server's watch cache reads them from etcd's watch like any write. The
// first templateServices Services go through the API, and every later
// object copies the managedFields of the template of its shape, so that the
// objects the servers list are the size they would be.

const templateServices = 100

var pbSerializer = protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)

func encodeProto(obj runtime.Object) ([]byte, error) {
	var b bytes.Buffer
	if err := pbSerializer.Encode(obj, &b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// etcdPut is one key and value of a transaction.
type etcdPut struct{ Key, Value []byte }

// etcdTxn writes puts in one etcd transaction through etcd's HTTP gateway.
func etcdTxn(ctx context.Context, hc *http.Client, url string, puts []etcdPut) error {
	if len(puts) == 0 {
		return nil
	}
	type put struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	type op struct {
		RequestPut put `json:"requestPut"`
	}
	var body struct {
		Success []op `json:"success"`
	}
	for _, p := range puts {
		body.Success = append(body.Success, op{put{base64.StdEncoding.EncodeToString(p.Key), base64.StdEncoding.EncodeToString(p.Value)}})
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return retry(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v3/kv/txn", bytes.NewReader(b))
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !bytes.Contains(out, []byte(`"succeeded":true`)) {
			return fmt.Errorf("etcd txn: %s: %.300s", resp.Status, out)
		}
		return nil
	})
}

// ipPool hands out free addresses from a start, skipping those in use.
type ipPool struct {
	next netip.Addr
	used map[netip.Addr]bool
}

func (p *ipPool) take() netip.Addr {
	for p.used[p.next] {
		p.next = p.next.Next()
	}
	a := p.next
	p.used[a] = true
	p.next = p.next.Next()
	return a
}

// templates are the managedFields of the API-created objects of each
// shape: Service i%100 and its slices by name suffix.
type templates struct {
	svc    map[int][]metav1.ManagedFieldsEntry
	slices map[string][]metav1.ManagedFieldsEntry // key: "<i%100>/<v4-0>"
}

func loadTemplates(ctx context.Context, c kubernetes.Interface, sh shape) (*templates, error) {
	t := &templates{svc: map[int][]metav1.ManagedFieldsEntry{}, slices: map[string][]metav1.ManagedFieldsEntry{}}
	for j := range templateServices {
		v := sh.service(j)
		s, err := c.CoreV1().Services(v.NS).Get(ctx, v.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("template service %s: %w", v.Name, err)
		}
		t.svc[j] = s.ManagedFields
		for _, sl := range sh.sliceObjects(v) {
			got, err := c.DiscoveryV1().EndpointSlices(v.NS).Get(ctx, sl.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("template slice %s: %w", sl.Name, err)
			}
			t.slices[fmt.Sprintf("%d/%s", j, sl.Name[len(v.Name)+1:])] = got.ManagedFields
		}
	}
	return t, nil
}

// usedIPs lists the IPAddress objects: the cluster IPs already taken.
func usedIPs(ctx context.Context, c kubernetes.Interface) (map[netip.Addr]bool, error) {
	used := map[netip.Addr]bool{}
	opts := metav1.ListOptions{Limit: 5000}
	for {
		l, err := c.NetworkingV1().IPAddresses().List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list ipaddresses: %w", err)
		}
		for _, ip := range l.Items {
			if a, err := netip.ParseAddr(ip.Name); err == nil {
				used[a] = true
			}
		}
		if l.Continue == "" {
			return used, nil
		}
		opts.Continue = l.Continue
	}
}

// fillEtcd adds Services from..to-1 (and their IPAddresses and
// EndpointSlices) by writing them into etcd; see the comment above.
func fillEtcd(ctx context.Context, c kubernetes.Interface, etcdURL string, sh shape, from, to, workers int, log *slog.Logger) (fillStats, error) {
	t0 := time.Now()
	var apiPart fillStats
	if from < templateServices {
		var err error
		if apiPart, err = fill(ctx, c, sh, from, min(to, templateServices), workers, log); err != nil {
			return fillStats{}, err
		}
		from = min(to, templateServices)
	} else if _, err := fill(ctx, c, sh, 0, 0, workers, log); err != nil { // the namespaces
		return fillStats{}, err
	}
	if from >= to {
		return apiPart, nil
	}
	tpl, err := loadTemplates(ctx, c, sh)
	if err != nil {
		return fillStats{}, err
	}
	used, err := usedIPs(ctx, c)
	if err != nil {
		return fillStats{}, err
	}
	v4 := &ipPool{next: netip.MustParseAddr("10.96.16.0"), used: used}
	v6 := &ipPool{next: netip.MustParseAddr("fd00:10:96::1:0"), used: used}

	type job struct {
		v      svc
		v4, v6 netip.Addr
	}
	work := make(chan job, workers*4)
	errs := make(chan error, workers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hc := &http.Client{Timeout: 60 * time.Second}
	var nSvc, nSlice atomic.Int64
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				log.Info("fill (etcd)", "services", from+int(nSvc.Load()), "of", to, "slices", nSlice.Load(), "elapsed", time.Since(t0).Round(time.Second))
			}
		}
	}()
	defer close(done)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var batch, ips []etcdPut
			nb, ns := 0, 0
			flush := func() error {
				if len(batch) == 0 {
					return nil
				}
				// The IPAddress objects first: the API server's IP repair
				// loop takes a Service seen before its IPAddress for one
				// that lacks it, and an IPAddress seen alone for a leak.
				if err := etcdTxn(ctx, hc, etcdURL, ips); err != nil {
					return err
				}
				if err := etcdTxn(ctx, hc, etcdURL, batch); err != nil {
					return err
				}
				ips = ips[:0]
				nSvc.Add(int64(nb))
				nSlice.Add(int64(ns))
				batch, nb, ns = batch[:0], 0, 0
				return nil
			}
			fail := func(err error) {
				errs <- err
				cancel()
			}
			for j := range work {
				// Created now, not when the fill began: the API server's IP
				// repair deletes an IPAddress it sees without its Service
				// once the address is 60 s old, and the Service, written in
				// the next transaction, can reach its informer after the
				// IPAddress does. Stamped at the start, every address of a
				// fill longer than a minute was fair game, and the
				// restarted API server had hundreds to re-create in its
				// first repair, which must end within a minute.
				puts, slices, err := etcdObjects(sh, tpl, j.v, j.v4, j.v6, metav1.Now())
				if err != nil {
					fail(err)
					return
				}
				for _, p := range puts {
					if bytes.HasPrefix(p.Key, []byte("/registry/ipaddresses/")) {
						ips = append(ips, p)
					} else {
						batch = append(batch, p)
					}
				}
				nb++
				ns += slices
				if len(batch) >= 90 {
					if err := flush(); err != nil {
						fail(err)
						return
					}
				}
			}
			if err := flush(); err != nil {
				fail(err)
			}
		})
	}
feed:
	for i := from; i < to; i++ {
		v := sh.service(i)
		var j = job{v: v}
		if !v.Headless {
			j.v4 = v4.take()
			if v.DualStack {
				j.v6 = v6.take()
			}
		}
		select {
		case work <- j:
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
	st := fillStats{Services: apiPart.Services + int(nSvc.Load()), Slices: apiPart.Slices + int(nSlice.Load()), Took: time.Since(t0)}
	log.Info("filled (etcd)", "services", to, "added", st.Services, "slices added", st.Slices, "took", st.Took.Round(time.Second), "objects/s", int(st.Rate()))
	return st, nil
}

// etcdObjects are the keys and values of Service v as the API server stores
// them: the Service with the defaults the API server fills in, the
// IPAddress objects of its cluster IPs, and its EndpointSlices.
func etcdObjects(sh shape, tpl *templates, v svc, ip4, ip6 netip.Addr, now metav1.Time) ([]etcdPut, int, error) {
	var puts []etcdPut
	add := func(key string, obj runtime.Object) error {
		b, err := encodeProto(obj)
		if err != nil {
			return fmt.Errorf("encode %s: %w", key, err)
		}
		puts = append(puts, etcdPut{[]byte(key), b})
		return nil
	}
	s := sh.serviceObject(v)
	s.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}
	s.UID = uuid.NewUUID()
	s.CreationTimestamp = now
	s.ManagedFields = tpl.svc[v.I%templateServices]
	s.Spec.Type = corev1.ServiceTypeClusterIP
	s.Spec.SessionAffinity = corev1.ServiceAffinityNone
	itp := corev1.ServiceInternalTrafficPolicyCluster
	s.Spec.InternalTrafficPolicy = &itp
	single := corev1.IPFamilyPolicySingleStack
	if s.Spec.IPFamilyPolicy == nil {
		s.Spec.IPFamilyPolicy = &single
	}
	for k := range s.Spec.Ports {
		s.Spec.Ports[k].TargetPort = intstr.FromInt32(s.Spec.Ports[k].Port)
	}
	s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	if v.Headless {
		s.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
	} else {
		s.Spec.ClusterIP = ip4.String()
		s.Spec.ClusterIPs = []string{ip4.String()}
		if v.DualStack {
			s.Spec.ClusterIPs = append(s.Spec.ClusterIPs, ip6.String())
			s.Spec.IPFamilies = append(s.Spec.IPFamilies, corev1.IPv6Protocol)
		}
	}
	if err := add(fmt.Sprintf("/registry/services/specs/%s/%s", v.NS, v.Name), s); err != nil {
		return nil, 0, err
	}
	for _, ipStr := range s.Spec.ClusterIPs {
		if ipStr == corev1.ClusterIPNone {
			continue
		}
		fam := "IPv4"
		if netip.MustParseAddr(ipStr).Is6() {
			fam = "IPv6"
		}
		ip := &networkingv1.IPAddress{
			TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "IPAddress"},
			ObjectMeta: metav1.ObjectMeta{Name: ipStr, UID: uuid.NewUUID(), CreationTimestamp: now, Labels: map[string]string{
				networkingv1.LabelIPAddressFamily: fam,
				networkingv1.LabelManagedBy:       "ipallocator.k8s.io",
			}},
			Spec: networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{Resource: "services", Namespace: v.NS, Name: v.Name}},
		}
		if err := add("/registry/ipaddresses/"+ipStr, ip); err != nil {
			return nil, 0, err
		}
	}
	slices := sh.sliceObjects(v)
	for _, sl := range slices {
		sl.TypeMeta = metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"}
		sl.UID = types.UID(uuid.NewUUID())
		sl.CreationTimestamp = now
		sl.Generation = 1
		sl.ManagedFields = tpl.slices[fmt.Sprintf("%d/%s", v.I%templateServices, sl.Name[len(v.Name)+1:])]
		if err := add(fmt.Sprintf("/registry/endpointslices/%s/%s", v.NS, sl.Name), sl); err != nil {
			return nil, 0, err
		}
	}
	return puts, len(slices), nil
}
