package runtime_test

import (
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

var sendrecvConfigs = []struct {
	name string
	cfg  runtime.Config
}{
	{"node", runtime.Config{}},
	{"nodes2-real", runtime.Config{LocalNodes: 2, Transports: []string{"self", "shm", "tcp"}}},
}

// A 1-d halo exchange on an open line: the ends talk to ProcNull and need
// no special case; a ring of Sendrecv with messages of every rank's own
// size; SendrecvReplace around the ring.
func TestSendrecvHalo(t *testing.T) {
	for _, sc := range sendrecvConfigs {
		t.Run(sc.name, func(t *testing.T) {
			cfg := ranktest.Config{Runtime: sc.cfg}
			cfg.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
				me, n := c.Rank(), c.Size()
				left, right := me-1, me+1
				if left < 0 {
					left = runtime.ProcNull
				}
				if right >= n {
					right = runtime.ProcNull
				}
				// Interior 0..9 holds me*100+i; ghosts at both ends.
				u := make([]float64, 12)
				for i := range 10 {
					u[i+1] = float64(me*100 + i)
				}
				// Send the right edge right, receive the left ghost from the left.
				st, err := runtime.Sendrecv(c, u[10:11], right, 1, u[0:1], left, 1)
				if err != nil {
					t.Fatal(err)
				}
				if left == runtime.ProcNull {
					if u[0] != 0 || st.Source != runtime.ProcNull || st.Count != 0 {
						t.Errorf("rank %d: from ProcNull: ghost %v, status %+v", me, u[0], st)
					}
				} else if u[0] != float64(left*100+9) || st.Source != left || st.Count != 1 {
					t.Errorf("rank %d: left ghost %v (status %+v), want %d", me, u[0], st, left*100+9)
				}
				if _, err := runtime.Sendrecv(c, u[1:2], left, 2, u[11:12], right, 2); err != nil {
					t.Fatal(err)
				}
				if right != runtime.ProcNull && u[11] != float64(right*100) {
					t.Errorf("rank %d: right ghost %v, want %d", me, u[11], right*100)
				}
				// A ring, messages of different sizes each way.
				to, from := (me+1)%n, (me+n-1)%n
				out := slices.Repeat([]int32{int32(me)}, me+1)
				in := make([]int32, from+1)
				st, err = runtime.Sendrecv(c, out, to, 3, in, runtime.AnySource, runtime.AnyTag)
				if err != nil || st.Source != from || st.Tag != 3 || st.Count != from+1 || in[from] != int32(from) {
					t.Errorf("rank %d: ring got %v %+v %v", me, in, st, err)
				}
				buf := []int64{int64(me), int64(me)}
				if _, err := runtime.SendrecvReplace(c, buf, to, 4, from, 4); err != nil || buf[0] != int64(from) || buf[1] != int64(from) {
					t.Errorf("rank %d: SendrecvReplace gave %v, %v", me, buf, err)
				}
				// A receive too small for what comes: ErrTruncated.
				small := make([]int32, from) // one short
				if _, err := runtime.Sendrecv(c, out, to, 5, small, from, 5); !errors.Is(err, runtime.ErrTruncated) {
					t.Errorf("rank %d: a short receive gave %v, want ErrTruncated", me, err)
				}
			})
		})
	}
}

func TestProcNullRequests(t *testing.T) {
	ranktest.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
		sr, err := runtime.Isend(c, []byte("x"), runtime.ProcNull, 0)
		if err != nil {
			t.Fatal(err)
		}
		rr, err := runtime.Irecv(c, make([]byte, 4), runtime.ProcNull, runtime.AnyTag)
		if err != nil {
			t.Fatal(err)
		}
		<-rr.Done()
		if done, st, err := rr.Test(); !done || err != nil || st.Source != runtime.ProcNull {
			t.Errorf("Irecv(ProcNull): Test %v %+v %v", done, st, err)
		}
		if err := runtime.Waitall(sr, rr); err != nil {
			t.Error(err)
		}
		if st, err := runtime.Probe[byte](c, runtime.ProcNull, 0); err != nil || st.Source != runtime.ProcNull {
			t.Errorf("Probe(ProcNull): %+v %v", st, err)
		}
		if _, ok, err := runtime.Iprobe[byte](c, runtime.ProcNull, 0); !ok || err != nil {
			t.Errorf("Iprobe(ProcNull): %v %v", ok, err)
		}
		// A real bad rank is still an error.
		if err := runtime.Send(c, []byte("x"), -7, 0); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("Send to rank -7: %v", err)
		}
	})
}

func TestNodeName(t *testing.T) {
	host, _ := os.Hostname()
	ranktest.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
		if got := c.NodeName(1 - c.Rank()); got != host {
			t.Errorf("NodeName of the other rank %q, want %q", got, host)
		}
		if c.NodeName(2) != "" || c.NodeName(-1) != "" {
			t.Error("NodeName out of range is not empty")
		}
	})
	var serial *runtime.Comm
	if serial.NodeName(0) != host {
		t.Errorf("NodeName on the serial communicator %q", serial.NodeName(0))
	}
}
