//go:build race

package persistence

// raceEnabled shrinks the heaviest tests under the race detector, which
// slows them tenfold.
const raceEnabled = true
