//go:build race

package chaos

// raceEnabled: the suite was built with -race.
const raceEnabled = true
