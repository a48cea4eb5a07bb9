//go:build race

package rma_test

// raceEnabled: the race detector cannot see the ordering that atomics on
// mapped memory give (golang/go#17065), so under -race the suite
// synchronizes ranks with messages only (see paths).
const raceEnabled = true
