package runtime_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// A rank that waits for a peer that has entered Close gets an error naming
// that peer, and nothing the peer sent before is lost.

func init() { ranktest.Register("closing", closingProgram) }

// closingProgram runs on 3 ranks. Rank 1 sends rank 0 a message and
// closes; rank 2 sends rank 0 a byte and closes (a rank is told only of the
// closing of peers it exchanged messages with: connections are made on
// first use). Rank 0, which posted a receive from rank 1
// before rank 1 closed, must get the message and then errors for
// everything that only rank 1 (or, for AnySource, rank 1 or 2) could
// complete. It closes the world itself, so the caller must not.
func closingProgram(c *runtime.Comm) error {
	switch c.Rank() {
	case 1:
		if _, err := runtime.Recv(c, make([]byte, 1), 0, 1); err != nil {
			return err
		}
		if err := runtime.Send(c, []int64{42, 43}, 0, 5); err != nil {
			return err
		}
		return c.Close()
	case 2:
		if err := runtime.Send(c, []byte{2}, 0, 2); err != nil {
			return err
		}
		return c.Close()
	}
	if _, err := runtime.Recv(c, make([]byte, 1), 2, 2); err != nil {
		return err
	}
	pending, err := runtime.Irecv(c, make([]int64, 1), 1, 6)
	if err != nil {
		return err
	}
	if err := runtime.Send(c, []byte{1}, 1, 1); err != nil {
		return err
	}
	got := make([]int64, 2)
	if _, err := runtime.Recv(c, got, 1, 5); err != nil || got[0] != 42 || got[1] != 43 {
		return fmt.Errorf("the message sent before Close: %v, %v", got, err)
	}
	checks := []struct {
		what string
		err  func() error
	}{
		{"the receive posted before", func() error { _, err := pending.Wait(); return err }},
		{"a new Recv", func() error { _, err := runtime.Recv(c, make([]int64, 1), 1, 7); return err }},
		{"Probe", func() error { _, err := runtime.Probe[int64](c, 1, runtime.AnyTag); return err }},
		{"Send", func() error { return runtime.Send(c, []int64{1}, 1, 8) }},
		{"Recv from AnySource", func() error {
			// Rank 2 may not have sent its closing notice yet: then this
			// waits for it.
			_, err := runtime.Recv(c, make([]int64, 1), runtime.AnySource, 9)
			return err
		}},
	}
	for _, ch := range checks {
		err := ch.err()
		if !errors.Is(err, runtime.ErrClosed) || !strings.Contains(err.Error(), "has called Close") {
			return fmt.Errorf("%s from a closed rank: %v, want ErrClosed naming the rank", ch.what, err)
		}
		if ch.what != "Recv from AnySource" && !strings.Contains(err.Error(), "rank 1 ") {
			return fmt.Errorf("%s: %v does not name rank 1", ch.what, err)
		}
	}
	return c.Close()
}

func TestRecvFromClosedPeer(t *testing.T) {
	comms, err := runtime.InitLocal(3)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 3)
	for _, c := range comms {
		go func() { errs <- closingProgram(c) }()
	}
	for range comms {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestRecvFromClosedPeerProcesses(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ranktest.SpawnConfig
	}{
		{"shm", ranktest.SpawnConfig{}},
		{"tcp", ranktest.SpawnConfig{Transports: "self,tcp"}},
		{"nodes3", ranktest.SpawnConfig{Nodes: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Spawn(t, 3, "closing")
		})
	}
}

func TestCollectiveOnClosedComm(t *testing.T) {
	// A rank that closed a communicator, or its whole world, makes no more
	// calls on it: a collective there cannot complete, and the others
	// learn why instead of waiting.
	for _, tc := range []struct {
		name string
		cfg  runtime.Config
	}{
		{"node", runtime.Config{}},
		{"messages", runtime.Config{Transports: []string{"self"}}},
	} {
		for _, closeWorld := range []bool{false, true} {
			name := tc.name + "/dup-closed"
			if closeWorld {
				name = tc.name + "/world-closed"
			}
			t.Run(name, func(t *testing.T) {
				cfg := ranktest.Config{Runtime: tc.cfg}
				cfg.Run(t, 3, func(t testing.TB, c *runtime.Comm) {
					d, err := c.Dup()
					if err != nil {
						t.Fatal(err)
					}
					// A slow rank may still be in this first Barrier when
					// the others have found out: then it fails here.
					err = d.Barrier()
					switch {
					case err != nil:
					case c.Rank() == 1 && closeWorld:
						err = c.Close() // the others never come
					case c.Rank() == 1:
						d.Close()
						err = c.Barrier() // the others never come
					default:
						err = d.Barrier()
					}
					if !errors.Is(err, runtime.ErrAborted) || !strings.Contains(err.Error(), "rank 1") ||
						!strings.Contains(err.Error(), "has closed the communicator") && !strings.Contains(err.Error(), "has called Close") {
						t.Fatalf("err = %v, want ErrAborted because rank 1 closed", err)
					}
				})
			})
		}
	}
}

func TestCloseWithLateRank(t *testing.T) {
	// A rank that comes to Close late (here: its first collective call)
	// makes the others wait, not fail: their checks find it still coming.
	comms, err := runtime.InitLocal(4)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, len(comms))
	for _, c := range comms {
		go func() {
			if c.Rank() == 2 {
				time.Sleep(3 * stallWait)
			}
			errs <- c.Close()
		}()
	}
	for range comms {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// stallWait is longer than the runtime waits before it checks a stalled
// collective with its peer.
const stallWait = 300 * time.Millisecond

func TestCloseAgainstBarrier(t *testing.T) {
	// Rank 0 closes while the others call Barrier: nobody hangs, and
	// nobody's Close succeeds as if all was well.
	for _, tc := range []struct {
		name string
		cfg  runtime.Config
	}{
		{"node", runtime.Config{}},
		{"messages", runtime.Config{Transports: []string{"self"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			comms, err := tc.cfg.InitLocal(3)
			if err != nil {
				t.Fatal(err)
			}
			errs := make(chan error, len(comms))
			for _, c := range comms {
				go func() {
					if c.Rank() == 0 {
						errs <- c.Close()
						return
					}
					berr := c.Barrier()
					cerr := c.Close()
					if berr == nil && cerr == nil {
						errs <- fmt.Errorf("rank %d: Barrier and Close both succeeded against a Close", c.Rank())
						return
					}
					errs <- nil
				}()
			}
			for range comms {
				if err := <-errs; err != nil && !errors.Is(err, runtime.ErrAborted) {
					t.Error(err)
				}
			}
		})
	}
}

func TestSendToClosingRank(t *testing.T) {
	// A rendezvous Send that the receiver never matched fails when the
	// receiver closes, instead of waiting for it forever.
	cfg := runtime.Config{EagerLimit: 1024}
	comms, err := cfg.InitLocal(2)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { errs <- comms[0].Close() }()
	go func() {
		c := comms[1]
		err := runtime.Send(c, make([]byte, 64<<10), 0, 3)
		if !errors.Is(err, runtime.ErrClosed) || !strings.Contains(err.Error(), "rank 0 ") {
			errs <- fmt.Errorf("Send to a rank that closed without receiving: %v, want ErrClosed naming rank 0", err)
			c.Close()
			return
		}
		errs <- c.Close()
	}()
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// Close of a world on several nodes is a barrier that sends between nodes
// only among the nodes' leaders (nodeAwareBarrier): still, no rank may
// return from it before every rank entered it. The last rank to enter is
// late on purpose, on a node of its own and on a shared one.
func TestCloseNodeAware(t *testing.T) {
	for _, tc := range []struct{ n, nodes, late int }{{7, 3, 0}, {7, 3, 6}, {9, 2, 4}, {5, 5, 2}} {
		t.Run(fmt.Sprintf("np%d/nodes%d/late%d", tc.n, tc.nodes, tc.late), func(t *testing.T) {
			cfg := runtime.Config{LocalNodes: tc.nodes}
			comms, err := cfg.InitLocal(tc.n)
			if err != nil {
				t.Fatal(err)
			}
			var entered atomic.Bool
			var wg sync.WaitGroup
			errs := make(chan error, tc.n)
			for r, c := range comms {
				wg.Go(func() {
					if err := c.Barrier(); err != nil { // builds nothing Close needs; just in step
						errs <- err
						return
					}
					if r == tc.late {
						time.Sleep(50 * time.Millisecond)
						entered.Store(true)
					}
					if err := c.Close(); err != nil {
						errs <- fmt.Errorf("rank %d: Close: %w", r, err)
						return
					}
					if !entered.Load() {
						errs <- fmt.Errorf("rank %d returned from Close before rank %d entered it", r, tc.late)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}
