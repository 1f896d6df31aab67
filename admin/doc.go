// Package admin is the operator HTTP listener: pins (list, look up, kick), nodes (state, session counts,
// drain), health, readiness and Prometheus metrics, behind a bearer token, on its own address.
//
// It must not be reachable from the client-facing listener.
package admin
