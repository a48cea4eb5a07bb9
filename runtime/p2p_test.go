package runtime_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

func TestSendRecvOrder(t *testing.T) {
	// Messages between a pair on one communicator arrive in send order,
	// across eager and rendezvous sizes mixed.
	ranktest.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
		rng := rand.New(rand.NewPCG(1, 2))
		sizes := make([]int, 200)
		for i := range sizes {
			sizes[i] = rng.IntN(200_000)
		}
		if c.Rank() == 0 {
			for i, n := range sizes {
				buf := make([]int32, n/4)
				for j := range buf {
					buf[j] = int32(i*1000 + j)
				}
				if err := runtime.Send(c, buf, 1, 7); err != nil {
					t.Fatal(err)
				}
			}
			return
		}
		for i, n := range sizes {
			buf := make([]int32, 60_000)
			st, err := runtime.Recv(c, buf, 0, 7)
			if err != nil {
				t.Fatal(err)
			}
			if st.Count != n/4 || st.Source != 0 || st.Tag != 7 || st.Bytes != n/4*4 {
				t.Fatalf("message %d: status %+v, want count %d", i, st, n/4)
			}
			for j := range st.Count {
				if buf[j] != int32(i*1000+j) {
					t.Fatalf("message %d: element %d = %d", i, j, buf[j])
				}
			}
		}
	})
}

func TestWildcardsAndTags(t *testing.T) {
	ranktest.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
		if c.Rank() != 0 {
			// Tag 2 first, then tag 1: a receive for tag 1 must skip over tag 2.
			for _, tag := range []int{2, 1} {
				if err := runtime.Send(c, []int{c.Rank()*10 + tag}, 0, tag); err != nil {
					t.Fatal(err)
				}
			}
			return
		}
		seen := map[int]bool{}
		for range 3 {
			v := []int{0}
			st, err := runtime.Recv(c, v, runtime.AnySource, 1)
			if err != nil {
				t.Fatal(err)
			}
			if v[0] != st.Source*10+1 || st.Tag != 1 {
				t.Fatalf("got %d from %+v", v[0], st)
			}
			seen[st.Source] = true
		}
		for range 3 {
			v := []int{0}
			st, err := runtime.Recv(c, v, runtime.AnySource, runtime.AnyTag)
			if err != nil {
				t.Fatal(err)
			}
			if st.Tag != 2 || v[0] != st.Source*10+2 {
				t.Fatalf("got %d from %+v", v[0], st)
			}
		}
		if len(seen) != 3 {
			t.Fatalf("sources %v", seen)
		}
	})
}

func TestTruncation(t *testing.T) {
	for _, n := range []int{10, 100_000} { // eager and rendezvous
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ranktest.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
				if c.Rank() == 0 {
					if err := runtime.Send(c, make([]float64, n), 1, 0); err != nil {
						t.Fatal(err)
					}
					// The pair still works afterwards.
					if err := runtime.Send(c, []float64{42}, 1, 1); err != nil {
						t.Fatal(err)
					}
					return
				}
				st, err := runtime.Recv(c, make([]float64, n-1), 0, 0)
				if !errors.Is(err, runtime.ErrTruncated) {
					t.Fatalf("err = %v, want ErrTruncated", err)
				}
				var oe *runtime.OpError
				if !errors.As(err, &oe) || oe.Op != "Recv" || oe.Rank != 1 || oe.Peer != 0 {
					t.Fatalf("err = %#v", err)
				}
				if st.Bytes != n*8 {
					t.Fatalf("status %+v, want %d bytes", st, n*8)
				}
				v := []float64{0}
				if _, err := runtime.Recv(c, v, 0, 1); err != nil || v[0] != 42 {
					t.Fatalf("after truncation: %v %v", v, err)
				}
			})
		})
	}
}

func TestNonblocking(t *testing.T) {
	ranktest.Run(t, 3, func(t testing.TB, c *runtime.Comm) {
		n, r := c.Size(), c.Rank()
		const m = 50_000 // rendezvous
		var reqs []*runtime.Request
		in := make([][]uint16, n)
		for p := range n {
			if p == r {
				continue
			}
			in[p] = make([]uint16, m)
			rq, err := runtime.Irecv(c, in[p], p, 3)
			if err != nil {
				t.Fatal(err)
			}
			reqs = append(reqs, rq)
		}
		out := make([]uint16, m)
		for i := range out {
			out[i] = uint16(r*7 + i)
		}
		for p := range n {
			if p == r {
				continue
			}
			rq, err := runtime.Isend(c, out, p, 3)
			if err != nil {
				t.Fatal(err)
			}
			reqs = append(reqs, rq)
		}
		if err := runtime.Waitall(reqs...); err != nil {
			t.Fatal(err)
		}
		for p := range n {
			for i, v := range in[p] {
				if v != uint16(p*7+i) {
					t.Fatalf("from %d element %d = %d", p, i, v)
				}
			}
		}
	})
}

func TestSelfSend(t *testing.T) {
	ranktest.Run(t, 1, func(t testing.TB, c *runtime.Comm) {
		rq, err := runtime.Irecv(c, make([]byte, 5), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := runtime.Send(c, []byte("hello"), 0, 0); err != nil {
			t.Fatal(err)
		}
		st, err := rq.Wait()
		if err != nil || st.Count != 5 {
			t.Fatalf("%+v %v", st, err)
		}
	})
}

func TestProbe(t *testing.T) {
	ranktest.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
		if c.Rank() == 0 {
			if err := runtime.Send(c, make([]int64, 12345), 1, 9); err != nil {
				t.Fatal(err)
			}
			return
		}
		st, err := runtime.Probe[int64](c, runtime.AnySource, runtime.AnyTag)
		if err != nil || st.Count != 12345 || st.Tag != 9 || st.Source != 0 {
			t.Fatalf("Probe: %+v %v", st, err)
		}
		st2, ok, err := runtime.Iprobe[int64](c, 0, 9)
		if err != nil || !ok || st2 != st {
			t.Fatalf("Iprobe: %+v %v %v", st2, ok, err)
		}
		if _, ok, _ := runtime.Iprobe[int64](c, 0, 10); ok {
			t.Fatal("Iprobe found a message with tag 10")
		}
		buf := make([]int64, st.Count)
		if _, err := runtime.Recv(c, buf, st.Source, st.Tag); err != nil {
			t.Fatal(err)
		}
	})
}

func TestInvalidP2P(t *testing.T) {
	var nilComm *runtime.Comm
	if err := runtime.Send(nilComm, []int{1}, 0, 0); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("Send on nil comm: %v", err)
	}
	ranktest.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
		for _, tc := range []struct {
			name string
			err  error
		}{
			{"dest", runtime.Send(c, []int{1}, 2, 0)},
			{"negdest", runtime.Send(c, []int{1}, -1, 0)},
			{"tag", runtime.Send(c, []int{1}, 0, -1)},
			{"src", func() error { _, err := runtime.Irecv(c, []int{1}, 5, 0); return err }()},
		} {
			if !errors.Is(tc.err, runtime.ErrInvalid) {
				t.Errorf("%s: err = %v, want ErrInvalid", tc.name, tc.err)
			}
		}
	})
}

func TestConcurrentSenders(t *testing.T) {
	// Several goroutines of one rank send at once; each stream stays in order.
	ranktest.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
		const g, m = 8, 200
		if c.Rank() == 0 {
			var wg sync.WaitGroup
			for k := range g {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range m {
						if err := runtime.Send(c, []int{k, i}, 1, k); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			return
		}
		next := make([]int, g)
		for range g * m {
			v := []int{0, 0}
			st, err := runtime.Recv(c, v, 0, runtime.AnyTag)
			if err != nil {
				t.Fatal(err)
			}
			if v[0] != st.Tag || v[1] != next[v[0]] {
				t.Fatalf("stream %d: got %d, want %d", v[0], v[1], next[v[0]])
			}
			next[v[0]]++
		}
	})
}

// TestBulkTransfersEnd: a rendezvous transfer keeps the transports' waits
// spinning while it is under way (world.spinning); once the sends and
// receives are done the count is back to zero on both sides, over shared
// memory and TCP.
func TestBulkTransfersEnd(t *testing.T) {
	settled := func(c *runtime.Comm) error {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.BulkTransfers(c) != 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("rank %d: %d rendezvous transfers still counted", c.Rank(), runtime.BulkTransfers(c))
			}
			time.Sleep(time.Millisecond)
		}
		return nil
	}
	for _, tr := range [][]string{{"self", "shm"}, {"self", "tcp"}} {
		t.Run(tr[1], func(t *testing.T) {
			cfg := ranktest.Config{Runtime: runtime.Config{Transports: tr}}
			cfg.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
				buf := make([]byte, 3<<20) // past the eager limit, several ring fills
				for range 3 {
					var err error
					if c.Rank() == 0 {
						err = runtime.Send(c, buf, 1, 7)
					} else {
						_, err = runtime.Recv(c, buf, 0, 7)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if err := settled(c); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}
