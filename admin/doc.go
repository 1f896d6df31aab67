// Package admin is sidpin's operator listener: the nodes and their sessions, the pins, drain and
// kick, health and readiness. It listens on its own address, and every route but /healthz needs the
// bearer token when one is configured.
package admin
