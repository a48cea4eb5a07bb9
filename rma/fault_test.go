package rma_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/gorun-hpc/gorun/rma"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// An origin waiting for a lock that a dead rank holds gets ErrAborted with
// the cause, and nothing leaks (TestMain checks).

func init() {
	ranktest.Register("rma-dead-holder", func(c *runtime.Comm) error {
		w, err := rma.Allocate[int64](c, 4)
		if err != nil {
			return err
		}
		switch c.Rank() {
		case 1:
			// Take rank 0's lock for good, then die holding it.
			if err := w.Lock(0, rma.Exclusive); err != nil {
				return err
			}
			if _, err := w.FetchAndOp(1, 0, 0, runtime.Sum); err != nil {
				return err
			}
			if err := c.Barrier(); err != nil {
				return err
			}
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		case 2:
			if err := c.Barrier(); err != nil {
				return err
			}
			err := w.Lock(0, rma.Exclusive)
			if err == nil {
				_, err = w.FetchAndOp(1, 0, 0, runtime.Sum)
			}
			if err == nil {
				err = w.Unlock(0)
			}
			fmt.Printf("waiter: %v\n", err)
			if !errors.Is(err, runtime.ErrAborted) {
				return fmt.Errorf("the lock waiter got %v, want ErrAborted", err)
			}
			return nil
		}
		err = c.Barrier()
		if err == nil {
			_, err = runtime.Recv(c, make([]byte, 1), 1, 9) // until the job fails
		}
		return nil
	})
}

func TestDeadLockHolder(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ranktest.SpawnConfig
	}{
		{"direct", ranktest.SpawnConfig{}},
		{"tcp", ranktest.SpawnConfig{Nodes: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, res := tc.cfg.SpawnResult(t, 3, "rma-dead-holder")
			if res.ExitCode() == 0 {
				t.Fatalf("the job succeeded with a rank killed:\n%s", out)
			}
			if !strings.Contains(out, "waiter: ") || !strings.Contains(out, "aborted") {
				t.Fatalf("the waiter did not report ErrAborted:\n%s", out)
			}
			if strings.Contains(out, "the lock waiter got") {
				t.Fatalf("wrong error:\n%s", out)
			}
		})
	}
}

// TestAccumulateMillion adds one, a million times in all, into one counter
// of rank 0 from the direct path (rank 1, its node) and the message path
// (ranks 2 and 3, the other node) at once: the sum is exact.
func TestAccumulateMillion(t *testing.T) {
	if testing.Short() {
		t.Skip("a million accumulates")
	}
	cfg := ranktest.Config{Runtime: runtime.Config{LocalNodes: 2, Transports: []string{"self", "shm", "tcp"}}}
	cfg.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
		w, err := rma.Allocate[int64](c, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		const total = 1_000_000
		per := total / c.Size()
		if err := w.Lock(0, rma.Shared); err != nil {
			t.Fatal(err)
		}
		one := []int64{1}
		for range per {
			if err := w.Accumulate(one, 0, 0, runtime.Sum); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Unlock(0); err != nil {
			t.Fatal(err)
		}
		if err := c.Barrier(); err != nil {
			t.Fatal(err)
		}
		if c.Rank() == 0 && w.Local()[0] != int64(per*c.Size()) {
			t.Errorf("counter %d, want %d", w.Local()[0], per*c.Size())
		}
	})
}
