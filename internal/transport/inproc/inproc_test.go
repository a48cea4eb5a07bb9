package inproc_test

import (
	"errors"
	"testing"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/transport/inproc"
	"github.com/gorun-hpc/gorun/internal/transport/transporttest"
)

func TestConformance(t *testing.T) {
	transporttest.Run(t, func(t *testing.T, h0, h1 transport.Handler) (transport.Endpoint, transport.Endpoint, func()) {
		e0, e1 := inproc.Pair(0, h0, 1, h1)
		// Rank 1 dying takes both directions with it: rank 0 hears of it
		// through PeerLost and its Sends to rank 1 fail.
		kill := func() {
			err := errors.New("rank 1 died")
			e0.Break(err)
			e1.Break(err)
		}
		return e0, e1, kill
	})
}
