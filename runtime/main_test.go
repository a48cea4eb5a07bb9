package runtime_test

import (
	"testing"

	"github.com/gorun-hpc/gorun/internal/testutil"
)

// TestMain lets the test binary act as a rank for ranktest.Spawn, and
// fails the run if a test leaves goroutines, processes or sockets behind.
func TestMain(m *testing.M) { testutil.Main(m) }
