package runtime_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/am"
	"github.com/gorun-hpc/gorun/internal/wire"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// TestPortCloseWaitsForHandler: Close of an active-message port returns
// only after a handler call already under way has returned, so a service
// may free what its handler touches (rma unmaps a window) right after.
// This is the rma race it guards against: an unanswered unlock served on
// the target's receive path while the target closed its window.
func TestPortCloseWaitsForHandler(t *testing.T) {
	entered := make(chan struct{})
	var finished atomic.Bool
	cfg := ranktest.Config{Runtime: runtime.Config{LocalNodes: 2}}
	cfg.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
		d, err := c.Dup()
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		p, err := am.Open(d, func(from int, h wire.Header, body am.Body) error {
			close(entered)
			time.Sleep(50 * time.Millisecond) // a slow handler, so Close meets it
			finished.Store(true)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Barrier(); err != nil {
			t.Fatal(err)
		}
		if c.Rank() == 1 {
			if err := p.Send(0, wire.Header{}, []byte("x")); err != nil {
				t.Fatal(err)
			}
		} else {
			<-entered
			p.Close()
			if !finished.Load() {
				t.Error("Port.Close returned while its handler was running")
			}
		}
		if err := d.Barrier(); err != nil {
			t.Fatal(err)
		}
		p.Close()
	})
}
