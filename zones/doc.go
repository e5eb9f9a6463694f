// Package zones owns the cluster zone: it turns Kubernetes Services,
// EndpointSlices, Pods and Namespaces into the DNS records of the Kubernetes
// DNS-Based Service Discovery specification (version 1.1.0), and keeps them in
// an index that answers a lookup with one map read.
//
// Objects enter as slim types (Service, EndpointSlice, Pod, Namespace) built at
// ingest from API objects, so nothing downstream sees a full Kubernetes object.
// Endpoints are kept packed (a ready IPv4 endpoint without a name is 4 bytes
// in its slice and 4 in its Service's view), and what can be spelt from an
// address (its dashed label, its PTR target) is spelt when asked for.
// A Zone applies changes per Service: the records of the Service that changed
// (and its PTRs) are rebuilt, nothing else, and readers never wait behind a
// long update.
//
// The package also owns the object sources that feed a Zone: a directory
// of YAML/JSON manifests, watched for changes, and the Kubernetes API,
// listed and watched by informers of its own that keep no cache and hand
// each object to the Zone as it is decoded: the Zone is the store.
package zones
