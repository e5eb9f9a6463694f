// Package envgen owns environment-variable service discovery: the
// <SVC>_SERVICE_HOST, <SVC>_SERVICE_PORT and Docker-links variables kubelet
// gives every container, computed exactly as kubelet computes them, and the
// mutating admission webhook that writes them into Pod specs.
//
// Without instructions the webhook adds to each container precisely the
// variables kubelet would add itself and that the container cannot already
// define, so a Pod's environment is the same with the webhook and without it.
// A Pod annotation (svcdisc.io/services) selects Services instead, across
// namespaces if asked; svcdisc.io/inject: "false" opts a Pod out. A size cap
// bounds what one container receives.
//
// The Services come from a Store, which any object source of package zones
// can feed. The package never touches DNS.
package envgen
