package patterns_test

import (
	"testing"

	"github.com/gorun-hpc/gorun/internal/testutil"
)

// TestMain runs the ranks that ranktest.Spawn starts, and after the tests
// fails the run if goroutines, child processes, sockets or gorun segments
// in /dev/shm were left behind.
func TestMain(m *testing.M) { testutil.Main(m) }
