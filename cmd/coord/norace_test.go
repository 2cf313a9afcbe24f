//go:build !race

package main

// raceEnabled: the tests were built with -race, and so is the coord binary
// they start.
const raceEnabled = false
