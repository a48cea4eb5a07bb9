package runtime_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/internal/collcheck"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// Groups and communicators made of them against naive models
// (internal/collcheck) on seeded inputs, 1 to 9 goroutine ranks on one
// node and across two emulated nodes (over the real transports too);
// processes run them through collcheck.All.

// groupConfigs are the paths the tests below run on.
var groupConfigs = []struct {
	name string
	cfg  runtime.Config
	nps  []int
}{
	{"node", runtime.Config{}, []int{1, 2, 3, 4, 5, 6, 7, 8, 9}},
	{"nodes2", runtime.Config{LocalNodes: 2}, []int{2, 3, 4, 5, 6, 7, 8, 9}},
	{"nodes2-real", runtime.Config{LocalNodes: 2, Transports: []string{"self", "shm", "tcp"}}, []int{3, 5}},
}

func TestGroups(t *testing.T) {
	for _, gc := range groupConfigs {
		for _, np := range gc.nps {
			t.Run(fmt.Sprint(gc.name, "/np", np), func(t *testing.T) {
				cfg := ranktest.Config{Runtime: gc.cfg}
				cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
					for seed := range uint64(6) {
						if err := collcheck.GroupOps(c, seed); err != nil {
							t.Fatalf("seed %d: %v", seed, err)
						}
						if err := collcheck.Creation(c, seed); err != nil {
							t.Fatalf("seed %d: %v", seed, err)
						}
					}
				})
			})
		}
	}
}

// A serial run: the nil communicator's group.
func TestGroupsSerial(t *testing.T) {
	var c *runtime.Comm
	g := c.Group()
	if g.Size() != 1 || g.Rank() != 0 {
		t.Fatalf("serial group: size %d rank %d", g.Size(), g.Rank())
	}
	if s, err := c.Create(g); s != nil || err != nil {
		t.Errorf("Create on the serial communicator: %v, %v", s, err)
	}
	if s, err := c.CreateGroup(g, 0); s != nil || err != nil {
		t.Errorf("CreateGroup on the serial communicator: %v, %v", s, err)
	}
	if _, err := c.CreateGroup(nil, 0); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("CreateGroup of the empty group: %v, want ErrInvalid", err)
	}
	var empty *runtime.Group
	if empty.Size() != 0 || empty.Rank() != runtime.Undefined || runtime.Compare(empty, runtime.Difference(g, g)) != runtime.Ident {
		t.Errorf("the nil group is not the empty group")
	}
	if err := collcheck.GroupOps(c, 1); err != nil {
		t.Fatal(err)
	}
}

// Create where every rank's group has a process outside the communicator
// (a group of the world, passed to Create on half of it): the same
// ErrInvalid everywhere, and the communicator still works.
func TestCreateOutsideGroup(t *testing.T) {
	for _, bc := range badConfigs {
		t.Run(bc.name, func(t *testing.T) {
			errs := make([]error, bc.n)
			cfg := ranktest.Config{Runtime: bc.cfg}
			cfg.Run(t, bc.n, func(t testing.TB, c *runtime.Comm) {
				half, err := c.Split(c.Rank()%2, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer half.Close()
				g := half.Group()
				if half.Rank() == half.Size()-1 {
					g = c.Group() // the bad rank's group holds the other half
				}
				_, errs[c.Rank()] = half.Create(g)
				if err := half.Barrier(); err != nil {
					t.Fatal(err)
				}
			})
			for r, err := range errs {
				if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "is not a rank of world.split") {
					t.Errorf("rank %d: %v", r, err)
				}
			}
		})
	}
}

// CreateGroup where one member passes the members in another order: the
// same ErrInvalid on every member, naming two ranks that disagree; the
// other ranks go on meanwhile. A caller outside its group fails alone.
func TestCreateGroupBadInput(t *testing.T) {
	for _, bc := range badConfigs {
		t.Run(bc.name, func(t *testing.T) {
			errs := make([]error, bc.n)
			cfg := ranktest.Config{Runtime: bc.cfg}
			cfg.Run(t, bc.n, func(t testing.TB, c *runtime.Comm) {
				me, n := c.Rank(), c.Size()
				base := c.Group()
				if me == 0 {
					others, _ := base.Excl([]int{0})
					_, err := c.CreateGroup(others, 1)
					if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "not in the group") {
						t.Errorf("CreateGroup by a non-member: %v", err)
					}
					return
				}
				members := make([]int, 0, n-1)
				for r := 1; r < n; r++ {
					members = append(members, r)
				}
				if me == n-1 {
					slices.Reverse(members)
				}
				g, _ := base.Incl(members)
				_, errs[me] = c.CreateGroup(g, 3)
			})
			for r, err := range errs[1:] {
				if !errors.Is(err, runtime.ErrInvalid) || collcheck.Cause(err) != collcheck.Cause(errs[1]) ||
					!strings.Contains(err.Error(), fmt.Sprintf("and %d of world passed different groups", bc.n-1)) {
					t.Errorf("rank %d: %v", r+1, err)
				}
			}
		})
	}
}
