package runtime_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// Tests of Ssend/Issend, matched probes (Mprobe, Improbe, Mrecv, Imrecv)
// and Request.Cancel. Each check is a function of the communicator, run
// with goroutine ranks over the in-process transport and over real shared
// memory and TCP (sendrecvConfigs), and as process ranks (process_test.go).

func init() {
	ranktest.Register("p2p-more", func(c *runtime.Comm) error {
		for _, f := range []func(*runtime.Comm) error{checkSsend, checkMprobe, checkCancel, checkValues} {
			if err := f(c); err != nil {
				return err
			}
		}
		fmt.Printf("rank %d ok\n", c.Rank())
		return nil
	})
}

func runChecks(t *testing.T, sizes []int, check func(*runtime.Comm) error) {
	for _, sc := range sendrecvConfigs {
		for _, np := range sizes {
			if np < sc.cfg.LocalNodes {
				continue
			}
			t.Run(fmt.Sprint(sc.name, "/np", np), func(t *testing.T) {
				cfg := ranktest.Config{Runtime: sc.cfg}
				cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
					if err := check(c); err != nil {
						t.Fatal(err)
					}
				})
			})
		}
	}
}

// pattern fills a message of n bytes that says who sent it and which it is.
func msgPattern(src, seq, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(src*31 + seq*7 + i)
	}
	return b
}

// checkSsend: around a ring, each rank's Issend stays pending while its
// receiver has provably got the request to send (a later message of the
// pair came through and was answered) but posted no receive for it, and
// completes after the receiver receives it; eager and rendezvous sizes,
// empty messages, a self-send at one rank. Then Ssend into a posted
// receive, and into one too small (ErrTruncated there, nil at the sender).
func checkSsend(c *runtime.Comm) error {
	n, me := c.Size(), c.Rank()
	next, prev := (me+1)%n, (me-1+n)%n
	for _, size := range []int{0, 8, 1000, 100_000} {
		req, err := runtime.Issend(c, msgPattern(me, size, size), next, 1)
		if err != nil {
			return err
		}
		// Frames of a pair arrive in order: once the receiver has the
		// marker, it holds the synchronous send unmatched.
		if err := runtime.Send(c, []int{size}, next, 2); err != nil {
			return err
		}
		if _, err := runtime.Recv(c, make([]int, 1), prev, 2); err != nil {
			return err
		}
		if err := runtime.Send(c, []int{size}, prev, 3); err != nil {
			return err
		}
		if _, err := runtime.Recv(c, make([]int, 1), next, 3); err != nil {
			return err
		}
		if done, _, _ := req.Test(); done {
			return fmt.Errorf("rank %d: Issend of %d bytes completed before its receive was posted", me, size)
		}
		if err := runtime.Send(c, []int{size}, next, 4); err != nil {
			return err
		}
		if _, err := runtime.Recv(c, make([]int, 1), prev, 4); err != nil {
			return err
		}
		got := make([]byte, size)
		st, err := runtime.Recv(c, got, prev, 1)
		if err != nil {
			return err
		}
		if st.Source != prev || st.Bytes != size || !slices.Equal(got, msgPattern(prev, size, size)) {
			return fmt.Errorf("rank %d: synchronous message of %d bytes from %d: status %+v, data wrong: %v", me, size, prev, st, !slices.Equal(got, msgPattern(prev, size, size)))
		}
		if _, err := req.Wait(); err != nil {
			return err
		}
	}
	// Blocking Ssend into a posted receive; then into one too small.
	for _, size := range []int{16, 200_000} {
		in := make([]byte, size)
		rq, err := runtime.Irecv(c, in, prev, 5)
		if err != nil {
			return err
		}
		if err := runtime.Ssend(c, msgPattern(me, 5, size), next, 5); err != nil {
			return err
		}
		if _, err := rq.Wait(); err != nil || !slices.Equal(in, msgPattern(prev, 5, size)) {
			return fmt.Errorf("rank %d: Ssend of %d bytes: %v", me, size, err)
		}
		rq, err = runtime.Irecv(c, make([]byte, size-1), prev, 6)
		if err != nil {
			return err
		}
		if err := runtime.Ssend(c, msgPattern(me, 6, size), next, 6); err != nil {
			return fmt.Errorf("rank %d: Ssend into a short receive: %v, want nil", me, err)
		}
		if _, err := rq.Wait(); !errors.Is(err, runtime.ErrTruncated) {
			return fmt.Errorf("rank %d: short receive of a synchronous message: %v, want ErrTruncated", me, err)
		}
	}
	if err := runtime.Ssend(c, []int{1}, runtime.ProcNull, 0); err != nil {
		return err
	}
	if err := runtime.Ssend(c, []int{1}, n, 0); !errors.Is(err, runtime.ErrInvalid) {
		return fmt.Errorf("Ssend to rank %d: %v, want ErrInvalid", n, err)
	}
	return c.Barrier()
}

func TestSsend(t *testing.T) { runChecks(t, []int{1, 2, 3, 4}, checkSsend) }

// checkMprobe: every rank sends msgs messages of random sizes (eager and
// rendezvous) to rank 0, where several goroutines receive them with
// AnySource at once: some with Mprobe and Mrecv, some polling Improbe then
// Imrecv, one with plain Irecv of a buffer large enough for anything. Every
// message must be received exactly once, intact. Then ProcNull, a Message
// received twice, and truncation.
func checkMprobe(c *runtime.Comm) error {
	const msgs, maxSize = 30, 150_000
	n, me := c.Size(), c.Rank()
	sizes := func(src int) []int {
		rng := rand.New(rand.NewPCG(uint64(src), 7))
		s := make([]int, msgs)
		for i := range s {
			switch rng.IntN(3) {
			case 0:
				s[i] = rng.IntN(16)
			case 1:
				s[i] = rng.IntN(70_000)
			default:
				s[i] = 70_000 + rng.IntN(maxSize-70_000)
			}
		}
		return s
	}
	send := func() error {
		reqs := make([]*runtime.Request, 0, msgs)
		for seq, size := range sizes(me) {
			b := msgPattern(me, seq, size+8)
			b[0], b[1] = byte(me), byte(seq)
			r, err := runtime.Isend(c, b, 0, seq%3)
			if err != nil {
				return err
			}
			reqs = append(reqs, r)
		}
		return runtime.Waitall(reqs...)
	}
	if me != 0 {
		if err := send(); err != nil {
			return err
		}
		return mprobeEdges(c)
	}
	total := int64(n * msgs)
	var (
		claimed atomic.Int64
		mu      sync.Mutex
		seen    = map[[2]int]int{}
		errs    = make(chan error, 16)
		wg      sync.WaitGroup
	)
	check := func(who string, st runtime.Status, b []byte) error {
		if len(b) < 8 {
			return fmt.Errorf("%s: %d bytes from %d", who, len(b), st.Source)
		}
		src, seq := int(b[0]), int(b[1])
		want := msgPattern(src, seq, len(b))
		want[0], want[1] = byte(src), byte(seq)
		if src != st.Source || seq >= msgs || st.Tag != seq%3 || len(b) != sizes(src)[seq]+8 || !slices.Equal(b, want) {
			return fmt.Errorf("%s: message %d of rank %d: status %+v, %d bytes, contents intact %v", who, seq, src, st, len(b), slices.Equal(b, want))
		}
		mu.Lock()
		seen[[2]int{src, seq}]++
		mu.Unlock()
		return nil
	}
	receiver := func(how int) {
		defer wg.Done()
		for claimed.Add(1) <= total {
			var (
				m   *runtime.Message
				st  runtime.Status
				err error
			)
			switch how {
			case 0: // Mprobe, Mrecv
				if m, st, err = runtime.Mprobe[byte](c, runtime.AnySource, runtime.AnyTag); err != nil {
					errs <- err
					return
				}
				b := make([]byte, st.Count)
				if _, err = runtime.Mrecv(m, b); err == nil {
					err = check("Mprobe", st, b)
				}
			case 1: // Improbe until something comes, Imrecv
				ok := false
				for !ok && err == nil {
					m, st, ok, err = runtime.Improbe[byte](c, runtime.AnySource, runtime.AnyTag)
				}
				if err == nil {
					b := make([]byte, st.Bytes)
					var r *runtime.Request
					if r, err = runtime.Imrecv(m, b); err == nil {
						var got runtime.Status
						if got, err = r.Wait(); err == nil && got != st {
							err = fmt.Errorf("Imrecv status %+v, Improbe said %+v", got, st)
						}
						if err == nil {
							err = check("Improbe", st, b)
						}
					}
				}
			default: // a plain receive competes
				b := make([]byte, maxSize+8)
				if st, err = runtime.Recv(c, b, runtime.AnySource, runtime.AnyTag); err == nil {
					err = check("Recv", st, b[:st.Bytes])
				}
			}
			if err != nil {
				errs <- err
				return
			}
		}
	}
	for i := range 5 {
		wg.Add(1)
		go receiver(i % 3)
	}
	serr := send() // rank 0 sends to itself too
	wg.Wait()
	close(errs)
	if serr != nil {
		return serr
	}
	for err := range errs {
		return err
	}
	for src := range n {
		for seq := range msgs {
			if k := seen[[2]int{src, seq}]; k != 1 {
				return fmt.Errorf("message %d of rank %d received %d times", seq, src, k)
			}
		}
	}
	return mprobeEdges(c)
}

// mprobeEdges: ProcNull, a Message received twice, a nil Message, and
// matched messages truncated by Mrecv (the sender completes normally).
func mprobeEdges(c *runtime.Comm) error {
	// Rank 0's AnyTag receivers above would take the messages below if
	// they came before its own sends to itself were all received.
	if err := c.Barrier(); err != nil {
		return err
	}
	m, st, err := runtime.Mprobe[int](c, runtime.ProcNull, 3)
	if err != nil || st.Source != runtime.ProcNull {
		return fmt.Errorf("Mprobe(ProcNull): %+v %v", st, err)
	}
	for range 2 {
		if st, err := runtime.Mrecv(m, make([]int, 1)); err != nil || st.Source != runtime.ProcNull || st.Count != 0 {
			return fmt.Errorf("Mrecv of the ProcNull message: %+v %v", st, err)
		}
	}
	if _, _, ok, err := runtime.Improbe[int](c, runtime.ProcNull, 3); !ok || err != nil {
		return fmt.Errorf("Improbe(ProcNull): %v %v", ok, err)
	}
	if _, err := runtime.Mrecv[int](nil, nil); !errors.Is(err, runtime.ErrInvalid) {
		return fmt.Errorf("Mrecv(nil): %v, want ErrInvalid", err)
	}
	n, me := c.Size(), c.Rank()
	next, prev := (me+1)%n, (me-1+n)%n
	for i, size := range []int{40, 100_000} {
		tag := 9 + i // the sender may be a step ahead
		sr, err := runtime.Isend(c, make([]int32, size/4), next, tag)
		if err != nil {
			return err
		}
		m, st, err := runtime.Mprobe[int32](c, prev, tag)
		if err != nil || st.Count != size/4 || st.Source != prev || st.Tag != tag {
			return fmt.Errorf("Mprobe of %d bytes: %+v %v", size, st, err)
		}
		if _, _, ok, _ := runtime.Improbe[int32](c, prev, tag); ok {
			return fmt.Errorf("Improbe found a message that Mprobe took")
		}
		if _, err := runtime.Mrecv(m, make([]int32, size/4-1)); !errors.Is(err, runtime.ErrTruncated) {
			return fmt.Errorf("Mrecv of %d bytes into one less: %v, want ErrTruncated", size, err)
		}
		if _, err := runtime.Mrecv(m, make([]int32, size/4)); !errors.Is(err, runtime.ErrInvalid) {
			return fmt.Errorf("Mrecv of a received Message: %v, want ErrInvalid", err)
		}
		if _, err := sr.Wait(); err != nil {
			return err
		}
	}
	return c.Barrier()
}

func TestMprobe(t *testing.T) { runChecks(t, []int{1, 2, 3, 4}, checkMprobe) }

// checkCancel: rank 0 cancels receives nobody sent to (one of them a
// wildcard receive, a later twin of which then gets the message), and
// fails to cancel one that a message matched; cancelling a send is
// ErrInvalid and leaves the send to complete.
func checkCancel(c *runtime.Comm) error {
	n, me := c.Size(), c.Rank()
	peer := n - 1 // rank 0's partner; itself when alone
	if me != 0 && me != peer {
		return c.Barrier()
	}
	var nilReq *runtime.Request
	if err := nilReq.Cancel(); err != nil {
		return err
	}
	sizes := []int{8, 100_000}
	partner := func() error {
		for _, size := range sizes {
			if _, err := runtime.Recv(c, make([]int, 1), 0, 10); err != nil {
				return err
			}
			if err := runtime.Send(c, msgPattern(peer, 8, size), 0, 8); err != nil {
				return err
			}
			if err := runtime.Send(c, msgPattern(peer, 11, size), 0, 11); err != nil {
				return err
			}
			if err := runtime.Send(c, []int{1}, 0, 12); err != nil {
				return err
			}
		}
		return nil
	}
	if me == peer && me != 0 {
		if err := partner(); err != nil {
			return err
		}
	}
	var perr chan error
	if me == 0 && peer == 0 { // alone: the partner is another goroutine
		perr = make(chan error, 1)
		go func() { perr <- partner() }()
	}
	for _, size := range sizes {
		if me != 0 {
			break
		}
		keep := slices.Repeat([]byte{0xEE}, size)
		buf := slices.Clone(keep)
		r1, err := runtime.Irecv(c, buf, runtime.AnySource, 8)
		if err != nil {
			return err
		}
		twin := make([]byte, size)
		r2, err := runtime.Irecv(c, twin, runtime.AnySource, 8)
		if err != nil {
			return err
		}
		if err := r1.Cancel(); err != nil {
			return err
		}
		if err := r1.Cancel(); err != nil { // again: nothing happens
			return err
		}
		st, err := r1.Wait()
		if err != nil || !st.Canceled || st.Count != 0 || !slices.Equal(buf, keep) {
			return fmt.Errorf("canceled receive of %d bytes: %+v %v, buffer untouched %v", size, st, err, slices.Equal(buf, keep))
		}
		// Now the partner sends; the twin gets it.
		if err := runtime.Send(c, []int{1}, peer, 10); err != nil {
			return err
		}
		st, err = r2.Wait()
		if err != nil || st.Canceled || st.Source != peer || !slices.Equal(twin, msgPattern(peer, 8, size)) {
			return fmt.Errorf("the receive after a canceled one: %+v %v", st, err)
		}
		// A receive that a message matched is not canceled.
		got := make([]byte, size)
		r3, err := runtime.Irecv(c, got, peer, 11)
		if err != nil {
			return err
		}
		if _, err := runtime.Recv(c, make([]int, 1), peer, 12); err != nil {
			return err
		}
		if err := r3.Cancel(); err != nil {
			return err
		}
		st, err = r3.Wait()
		if err != nil || st.Canceled || !slices.Equal(got, msgPattern(peer, 11, size)) {
			return fmt.Errorf("cancel of a matched receive of %d bytes: %+v %v", size, st, err)
		}
	}
	if perr != nil {
		if err := <-perr; err != nil {
			return err
		}
	}
	// Sends cannot be canceled: ErrInvalid, and they go through.
	if me == 0 {
		for _, issend := range []bool{false, true} {
			var r *runtime.Request
			var err error
			if issend {
				r, err = runtime.Issend(c, []int{42}, peer, 13)
			} else {
				r, err = runtime.Isend(c, make([]int, 100_000), peer, 13)
			}
			if err != nil {
				return err
			}
			if err := r.Cancel(); !errors.Is(err, runtime.ErrInvalid) {
				return fmt.Errorf("Cancel of a send: %v, want ErrInvalid", err)
			}
			if me == peer {
				if _, err := runtime.Recv(c, make([]int, 100_000), 0, 13); err != nil {
					return err
				}
			}
			if st, err := r.Wait(); err != nil || st.Canceled {
				return fmt.Errorf("a send after Cancel: %+v %v", st, err)
			}
		}
	}
	if me == peer && me != 0 {
		for range 2 {
			if _, err := runtime.Recv(c, make([]int, 100_000), 0, 13); err != nil {
				return err
			}
		}
	}
	return c.Barrier()
}

func TestCancel(t *testing.T) { runChecks(t, []int{1, 2, 3}, checkCancel) }

// The same checks with process ranks: two emulated nodes of two, so pairs
// talk over shared-memory rings between processes and over TCP.
func TestProcessP2PMore(t *testing.T) {
	cfg := ranktest.SpawnConfig{Nodes: 2}
	out := cfg.Spawn(t, 4, "p2p-more")
	if got := strings.Count(out, " ok"); got != 4 {
		t.Fatalf("%d ranks reported ok, want 4:\n%s", got, out)
	}
}
