// Package poll waits in tests for a condition to hold, with a deadline, in
// place of sleeps that guess how long something takes.
package poll
