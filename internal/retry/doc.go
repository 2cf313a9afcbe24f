// Package retry repeats idempotent etcd requests. Both the coordinator and
// the participant use it: a request that timed out has an unknown outcome,
// and every request that comes through here is harmless to repeat, so the
// answer to "did it apply?" is to run it again and read what its compares
// say.
package retry
