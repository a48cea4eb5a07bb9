package runtime_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// AllocShared: one segment, a part per rank, every part visible to every
// rank of the node.

func init() { ranktest.Register("alloc-shared", allocSharedCheck) }

func allocSharedCheck(c *runtime.Comm) error {
	node, err := c.SplitShared()
	if err != nil {
		return err
	}
	defer node.Close()
	size := 100*node.Rank() + 8
	sh, err := node.AllocShared(size)
	if err != nil {
		return err
	}
	defer sh.Close()
	mine := sh.Part(node.Rank())
	if len(mine) != size {
		return fmt.Errorf("part of %d bytes, want %d", len(mine), size)
	}
	for i := range mine {
		mine[i] = byte(node.Rank()*7 + i)
	}
	if err := node.Barrier(); err != nil {
		return err
	}
	for r := range node.Size() {
		p := sh.Part(r)
		if len(p) != 100*r+8 || sh.Offset(r+1)-sh.Offset(r) != len(p) {
			return fmt.Errorf("part %d: %d bytes at %d", r, len(p), sh.Offset(r))
		}
		for i := range p {
			if p[i] != byte(r*7+i) {
				return fmt.Errorf("part %d byte %d = %d, want %d", r, i, p[i], byte(r*7+i))
			}
		}
	}
	// A negative size on one rank is the same error on every rank.
	bad := 8
	if node.Rank() == node.Size()-1 {
		bad = -1
	}
	if _, err := node.AllocShared(bad); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), fmt.Sprintf("rank %d: size -1 is negative", node.Size()-1)) {
		return fmt.Errorf("negative size on one rank: %v", err)
	}
	// A communicator across nodes cannot share memory.
	if multi := c.Size() > node.Size(); multi {
		if _, err := c.AllocShared(8); !errors.Is(err, runtime.ErrInvalid) {
			return fmt.Errorf("AllocShared across nodes: %v, want ErrInvalid", err)
		}
	}
	return node.Barrier()
}

func TestAllocShared(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  runtime.Config
	}{
		{"node", runtime.Config{}},
		{"nodes2", runtime.Config{LocalNodes: 2}},
		{"no-shm-transport", runtime.Config{Transports: []string{"self"}}},
		{"real", runtime.Config{LocalNodes: 2, Transports: []string{"self", "shm", "tcp"}}},
	} {
		cfg := tc.cfg
		t.Run(tc.name, func(t *testing.T) {
			rc := ranktest.Config{Runtime: cfg}
			rc.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
				if err := allocSharedCheck(c); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
	var serial *runtime.Comm
	sh, err := serial.AllocShared(16)
	if err != nil || len(sh.Part(0)) != 16 {
		t.Fatalf("on the nil communicator: %v", err)
	}
	sh.Close()
}

func TestAllocSharedProcesses(t *testing.T) {
	for _, nodes := range []int{1, 2} {
		t.Run(fmt.Sprint("nodes", nodes), func(t *testing.T) {
			cfg := ranktest.SpawnConfig{Nodes: nodes}
			cfg.Spawn(t, 4, "alloc-shared")
		})
	}
}

func TestCloseCancelsReceives(t *testing.T) {
	ranktest.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
		d, err := c.Dup()
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() {
			_, err := runtime.Recv(d, make([]byte, 1), 1-c.Rank(), 5)
			done <- err
		}()
		// Close while the Recv waits (or before it posts: either way it
		// must return ErrClosed).
		d.Close()
		if err := <-done; !errors.Is(err, runtime.ErrClosed) {
			t.Fatalf("Recv on a communicator closed under it: %v, want ErrClosed", err)
		}
	})
}

func TestReplaceNoOpNotForCollectives(t *testing.T) {
	ranktest.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
		for _, op := range []runtime.Op{runtime.Replace, runtime.NoOp} {
			v := []int64{1}
			if err := runtime.Allreduce(c, v, v, op); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "one-sided") {
				t.Fatalf("Allreduce with %v: %v, want ErrInvalid", op, err)
			}
		}
	})
}
