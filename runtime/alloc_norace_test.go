//go:build !race

package runtime_test

// raceEnabled: the race detector is on; allocation counts differ (alloc_test.go).
const raceEnabled = false
