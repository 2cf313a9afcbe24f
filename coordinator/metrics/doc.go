// Package metrics is the coordinator service's Prometheus instrumentation:
// a coordinator.Observer that counts transactions, decisions, recovery
// actions and etcd errors, and the HTTP API's request counter, all in one
// registry served at /metrics.
package metrics
