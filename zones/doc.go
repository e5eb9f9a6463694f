// Package zones owns the cluster zone: it turns Kubernetes Services,
// EndpointSlices, Pods and Namespaces into the DNS records of the Kubernetes
// DNS-Based Service Discovery specification (version 1.1.0), and keeps them in
// an index that answers a lookup with one map read.
//
// Objects enter as slim types (Service, EndpointSlice, Pod, Namespace) built at
// ingest from API objects, so nothing downstream sees a full Kubernetes object.
// A Zone applies changes per Service: the records of the Service that changed
// (and its PTRs) are rebuilt, nothing else, and readers never wait behind a
// long update.
//
// The package also owns the object sources that feed a Zone: today a
// directory of YAML/JSON manifests, watched for changes.
package zones
