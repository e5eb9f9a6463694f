package zones

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// EventSink receives the objects of a watching source, one change at a
// time. A Zone is one.
type EventSink interface {
	Update(obj Object)
	Delete(key Key)
	MarkSynced()
}

// KubeOptions configure the live Kubernetes source.
type KubeOptions struct {
	// Kubeconfig and Context select an explicit client configuration;
	// Endpoint overrides the API server URL.
	Kubeconfig string
	Context    string
	Endpoint   string
	// Namespaces, when not empty, limit what is watched.
	Namespaces []string
	// LabelSelector limits the Services and EndpointSlices watched.
	LabelSelector string
	// Pods watches Pods, which only pods verified needs.
	Pods bool
	// ServicesOnly watches Services and nothing else: what environment
	// variables need, and all the webhook's RBAC grants.
	ServicesOnly bool
	// UserAgent names the client to the API server.
	UserAgent string
	// NoEndpoints does not watch EndpointSlices (noendpoints).
	NoEndpoints bool
	// EndpointPodNames keeps the Pod name of each endpoint, which only
	// endpoint_pod_names uses: without it, a large cluster would hold a
	// million Pod names for nothing.
	EndpointPodNames bool
	// NamespaceLabels is a label selector the Namespaces watched must
	// match (namespace_labels); the zone checks it again.
	NamespaceLabels string
	// TLSCert, TLSKey and TLSCA are client certificate, key and CA files
	// for an Endpoint given without a kubeconfig (tls).
	TLSCert, TLSKey, TLSCA string
	// QPS and Burst limit the requests to the API server (apiserver_qps,
	// apiserver_burst); 0 keeps the defaults, 50 and 100. MaxInflight,
	// when not 0, caps the requests in flight (apiserver_max_inflight).
	QPS         float32
	Burst       int
	MaxInflight int
	// Listing, when set, is called as an informer starts receiving the
	// whole of its resource (the first sync, and each relist, as when the
	// API server comes back), and the function it returns once that has
	// arrived. Memory peaks then: the server lowers its GC target.
	Listing func() (done func())
}

// ErrNoKubeconfig means no client configuration was found: not given, not
// in a cluster, no $KUBECONFIG and no ~/.kube/config.
var ErrNoKubeconfig = errors.New("no Kubernetes client configuration found")

// RESTConfig finds the API server the way operators expect: an explicit
// kubeconfig or endpoint first, then the in-cluster configuration, then
// $KUBECONFIG or ~/.kube/config. It asks for protobuf, which costs the API
// server and us less than JSON.
func RESTConfig(o KubeOptions) (*rest.Config, error) {
	cfg, err := findRESTConfig(o)
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	if o.Endpoint != "" {
		cfg.Host = o.Endpoint
	}
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	if o.UserAgent != "" {
		cfg.UserAgent = o.UserAgent
	}
	if o.Endpoint != "" && o.Kubeconfig == "" && (o.TLSCert != "" || o.TLSKey != "" || o.TLSCA != "") {
		cfg.TLSClientConfig = rest.TLSClientConfig{CertFile: o.TLSCert, KeyFile: o.TLSKey, CAFile: o.TLSCA}
	}
	cfg.QPS, cfg.Burst = 50, 100
	if o.QPS > 0 {
		cfg.QPS = o.QPS
	}
	if o.Burst > 0 {
		cfg.Burst = o.Burst
	}
	if n := o.MaxInflight; n > 0 {
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return newInflightLimit(rt, n) })
	}
	return cfg, nil
}

// inflightLimit lets at most cap(slots) requests be in flight; the others
// wait for one to end, or for their context.
type inflightLimit struct {
	next  http.RoundTripper
	slots chan struct{}
}

func newInflightLimit(next http.RoundTripper, n int) *inflightLimit {
	return &inflightLimit{next: next, slots: make(chan struct{}, n)}
}

func (l *inflightLimit) RoundTrip(r *http.Request) (*http.Response, error) {
	select {
	case l.slots <- struct{}{}:
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	resp, err := l.next.RoundTrip(r)
	if err != nil || resp.Body == nil {
		<-l.slots
		return resp, err
	}
	// A watch is in flight until its body is closed.
	resp.Body = &releaseOnClose{ReadCloser: resp.Body, release: func() { <-l.slots }}
	return resp, nil
}

type releaseOnClose struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releaseOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

func findRESTConfig(o KubeOptions) (*rest.Config, error) {
	if o.Kubeconfig != "" || o.Context != "" {
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: o.Kubeconfig}
		if o.Kubeconfig == "" {
			rules = clientcmd.NewDefaultClientConfigLoadingRules()
		}
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
			&clientcmd.ConfigOverrides{CurrentContext: o.Context}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", o.Kubeconfig, err)
		}
		return cfg, nil
	}
	if o.Endpoint != "" {
		// An endpoint alone is a plain URL, as CoreDNS's endpoint option
		// (kubectl proxy, say); in a cluster it keeps the pod's credentials.
		if cfg, err := rest.InClusterConfig(); err == nil {
			return cfg, nil
		}
		return &rest.Config{Host: o.Endpoint}, nil
	}
	if cfg, err := rest.InClusterConfig(); err == nil {
		return cfg, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if len(rules.GetLoadingPrecedence()) == 0 || !anyExists(rules.GetLoadingPrecedence()) {
		return nil, ErrNoKubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", strings.Join(rules.GetLoadingPrecedence(), ":"), err)
	}
	return cfg, nil
}

func anyExists(paths []string) bool {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// Kube is the live source: informers on Services, EndpointSlices,
// Namespaces (and Pods when asked), whose events feed an EventSink.
// Objects are converted to their slim form as they arrive, and the sink
// is the only store of them (see informer.go).
type Kube struct {
	core, discovery rest.Interface
	sink            EventSink
	opts            KubeOptions
	log             *slog.Logger
	// tracker knows what was delivered to a sink that cannot say what
	// it holds (see holder).
	tracker keyTracker
	// relisting is held by the informer relisting (see informer.list).
	relisting sync.Mutex
	// retry is the wait before retrying after the n-th failure in a
	// row; nil is retryDelay's.
	retry func(n int) time.Duration
}

// kubeCodecs decode only the types the source watches. The generated
// clientset would register every API group: over half of the binary, and
// of the pages a running server touches, for four resources.
var kubeCodecs = func() serializer.CodecFactory {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, discoveryv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(fmt.Sprintf("register API types: %v", err)) // a programming error, caught by any test
		}
	}
	return serializer.NewCodecFactory(scheme)
}()

// restClients returns clients for core/v1 and discovery.k8s.io/v1 sharing
// one HTTP client, so both ride the same connection to the API server.
func restClients(cfg *rest.Config) (core, discovery rest.Interface, err error) {
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, nil, err
	}
	client := func(gv schema.GroupVersion, apiPath string) (rest.Interface, error) {
		c := rest.CopyConfig(cfg)
		c.GroupVersion = &gv
		c.APIPath = apiPath
		c.NegotiatedSerializer = kubeCodecs.WithoutConversion()
		if c.UserAgent == "" {
			c.UserAgent = rest.DefaultKubernetesUserAgent()
		}
		return rest.RESTClientForConfigAndClient(c, httpClient)
	}
	if core, err = client(corev1.SchemeGroupVersion, "/api"); err != nil {
		return nil, nil, err
	}
	if discovery, err = client(discoveryv1.SchemeGroupVersion, "/apis"); err != nil {
		return nil, nil, err
	}
	return core, discovery, nil
}

// NewKube returns a source feeding sink from the API server of cfg.
func NewKube(cfg *rest.Config, sink EventSink, opts KubeOptions, log *slog.Logger) (*Kube, error) {
	if opts.LabelSelector != "" {
		if _, err := labels.Parse(opts.LabelSelector); err != nil {
			return nil, fmt.Errorf("labels %q: %w", opts.LabelSelector, err)
		}
	}
	if opts.NamespaceLabels != "" {
		if _, err := labels.Parse(opts.NamespaceLabels); err != nil {
			return nil, fmt.Errorf("namespace_labels %q: %w", opts.NamespaceLabels, err)
		}
	}
	core, discovery, err := restClients(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Kube{core: core, discovery: discovery, sink: sink, opts: opts, log: log}, nil
}

// Run watches until ctx is done. The sink is marked synced once every
// informer has listed and every listed object reached the sink; until then
// the zone answers SERVFAIL. When the API server goes away the informers
// retry, the sink keeps the last known state, and a relist on return brings
// in what changed meanwhile.
func (k *Kube) Run(ctx context.Context) error {
	namespaces := []string{metav1.NamespaceAll}
	if len(k.opts.Namespaces) > 0 {
		namespaces = k.opts.Namespaces
	}
	var infs []*informer
	watch := func(client rest.Interface, resource string, example runtime.Object, ns string, selector string) error {
		lw := cache.NewFilteredListWatchFromClient(client, resource, ns, func(o *metav1.ListOptions) {
			o.LabelSelector = selector
		})
		inf, err := k.newInformer(cache.ToListWatcherWithWatchListSemantics(lw, client), example, resource, ns)
		if err != nil {
			return err
		}
		infs = append(infs, inf)
		return nil
	}
	for _, ns := range namespaces {
		if err := watch(k.core, "services", &corev1.Service{}, ns, k.opts.LabelSelector); err != nil {
			return err
		}
		if k.opts.ServicesOnly {
			continue
		}
		if !k.opts.NoEndpoints {
			if err := watch(k.discovery, "endpointslices", &discoveryv1.EndpointSlice{}, ns, k.opts.LabelSelector); err != nil {
				return err
			}
		}
		if k.opts.Pods {
			if err := watch(k.core, "pods", &corev1.Pod{}, ns, ""); err != nil {
				return err
			}
		}
	}
	if !k.opts.ServicesOnly {
		// Namespaces are cluster-scoped: one informer, filtered by the zone.
		// With namespace_labels, only the selected ones: one that stops
		// matching is deleted by the watch.
		if err := watch(k.core, "namespaces", &corev1.Namespace{}, metav1.NamespaceAll, k.opts.NamespaceLabels); err != nil {
			return err
		}
	}

	if b, ok := k.sink.(interface{ BuildAtSync() }); ok {
		b.BuildAtSync() // the first view arrives object by object
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	for _, inf := range infs {
		wg.Go(func() { inf.RunWithContext(ctx) })
	}
	start := time.Now()
	// Each informer's channel closes once its first listing is in the
	// sink: the zone is synced the moment the last one is, not at the next
	// 100 ms poll of cache.WaitForCacheSync.
	for _, inf := range infs {
		select {
		case <-inf.synced:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	k.sink.MarkSynced()
	k.log.Info("kubernetes: synced", "after", time.Since(start).Round(time.Millisecond))
	<-ctx.Done()
	return ctx.Err()
}

// apply delivers one converted object. An object DNS cannot publish (the
// transform logged why) withdraws whatever an earlier version of it
// published; event processing goes on.
func (k *Kube) apply(obj any) {
	s, ok := obj.(*slimObject)
	if !ok {
		k.log.Warn("kubernetes: unexpected object skipped", "type", fmt.Sprintf("%T", obj))
		return
	}
	if s.obj == nil {
		k.sink.Delete(s.key())
		return
	}
	k.sink.Update(s.obj)
}

// interner is a sink that can hand back the equal object it already holds.
type interner interface {
	Intern(Object) Object
}

// slim is the informers' transform: it converts each arriving API object to
// a slimObject. When the sink already holds an equal object (a relist hands
// every object in again) that one is kept, so a relist leaves no second copy
// of the cluster behind. An object DNS cannot publish is logged here, once
// per version received. Anything else passes through.
func (k *Kube) slim(obj any) (any, error) {
	if _, done := obj.(*slimObject); done {
		// Transformed already (a test's object, say): nothing to do.
		return obj, nil
	}
	out, why := slim(obj)
	s, ok := out.(*slimObject)
	if !ok {
		return out, nil
	}
	if s.obj == nil {
		if why != nil { // else nothing to publish yet, as a Pod without an IP
			k.log.Warn("kubernetes: object skipped", "object", s.key().String(), "err", why)
		}
		return out, nil
	}
	if e, ok := s.obj.(*EndpointSlice); ok && !k.opts.EndpointPodNames {
		e.dropPodNames() // the object is fresh: no one else holds it yet
	}
	if in, ok := k.sink.(interner); ok {
		s.obj = in.Intern(s.obj)
	}
	return out, nil
}

// slim converts an API object of a watched kind to a slimObject; why says
// what made one publish nothing. Anything else passes through.
func slim(obj any) (out any, why error) {
	ro, ok := obj.(runtime.Object)
	if !ok {
		return obj, nil
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return obj, nil
	}
	var kind Kind
	switch obj.(type) {
	case *corev1.Service:
		kind = KindService
	case *discoveryv1.EndpointSlice:
		kind = KindEndpointSlice
	case *corev1.Pod:
		kind = KindPod
	case *corev1.Namespace:
		kind = KindNamespace
	default:
		return obj, nil
	}
	o, why := FromObject(ro)
	return newSlimObject(kind, canonical(m.GetNamespace()), m.GetName(), o), why
}
