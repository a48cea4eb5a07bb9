package bootstrap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gorun-hpc/gorun/internal/auth"
)

func TestExchange(t *testing.T) {
	for _, n := range []int{1, 2, 3, 8} {
		t.Run("", func(t *testing.T) { testExchange(t, n, 5) })
	}
}

// testExchange runs n clients in goroutines through rounds repeated
// exchanges, checks every result, closes them and checks the events.
func testExchange(t *testing.T, n, rounds int) {
	j := newJob(t, n)
	errs := make([]<-chan error, n)
	for rank := range n {
		errs[rank] = async(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			c, err := Dial(ctx, j.env(rank))
			if err != nil {
				return err
			}
			defer c.Close()
			for round := range rounds {
				mine := data(rank, round)
				if round == 2 && rank%2 == 1 {
					mine = nil // empty contributions are kept apart from absent ones
				}
				got, err := c.Exchange(ctx, mine)
				if err != nil {
					return err
				}
				if len(got) != n {
					t.Errorf("rank %d round %d: %d parts, want %d", rank, round, len(got), n)
					continue
				}
				for r, p := range got {
					want := data(r, round)
					if round == 2 && r%2 == 1 {
						want = []byte{}
					}
					if !bytes.Equal(p, want) {
						t.Errorf("rank %d round %d: part %d = %.40q, want %.40q", rank, round, r, p, want)
					}
				}
			}
			return c.Close()
		})
	}
	for rank, ch := range errs {
		if err := await(t, "rank", ch); err != nil {
			t.Errorf("rank %d: %v", rank, err)
		}
	}
	seen := map[int]bool{}
	for range n {
		ev := j.nextEvent()
		if ev.Kind != EventFinalized || seen[ev.Rank] {
			t.Errorf("event %v, want one finalized event per rank", ev)
		}
		seen[ev.Rank] = true
	}
	j.noEvent()
	if err := j.coord.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, ok := <-j.coord.Events(); ok {
		t.Error("Events not closed after Close")
	}
}

func TestStrangersAreDropped(t *testing.T) {
	j := newJob(t, 2)

	// A silent stranger holds a connection in the handshake; the job must
	// not wait for it.
	j.rawConn()

	// A stranger speaking garbage.
	garbage := j.rawConn()
	garbage.Write([]byte(strings.Repeat("GET / HTTP/1.0\r\n\r\n", 8)))

	// A stranger with the wrong secret, claiming to be rank 0.
	wrong := j.env(0)
	wrong.Secret = bytes.Repeat([]byte{1}, 32)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if c, err := Dial(ctx, wrong); err == nil {
		c.Close()
		t.Fatal("Dial with a wrong secret succeeded")
	} else if !errors.Is(err, auth.ErrDenied) {
		t.Fatalf("Dial with a wrong secret: %v, want auth.ErrDenied", err)
	}
	if !strings.Contains(j.log.String(), "failed auth") {
		t.Errorf("stranger not logged; log:\n%s", j.log)
	}

	// The real rank 0 can still register: the stranger took no slot.
	c0, c1 := j.dial(0), j.dial(1)
	r0, r1 := exchangeAsync(c0, []byte("a")), exchangeAsync(c1, []byte("b"))
	for rank, ch := range []<-chan exchangeResult{r0, r1} {
		res := await(t, "Exchange", ch)
		if res.err != nil {
			t.Fatalf("rank %d Exchange: %v", rank, res.err)
		}
		if string(res.parts[0]) != "a" || string(res.parts[1]) != "b" {
			t.Fatalf("rank %d Exchange = %q", rank, res.parts)
		}
	}
	j.noEvent()
}

func TestDuplicateRankRefused(t *testing.T) {
	j := newJob(t, 2)
	c0 := j.dial(0)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if c, err := Dial(ctx, j.env(0)); err == nil {
		c.Close()
		t.Fatal("second Dial as rank 0 succeeded")
	} else if !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("second Dial as rank 0: %v, want 'already registered'", err)
	}
	// The first registration is unharmed.
	c1 := j.dial(1)
	r0, r1 := exchangeAsync(c0, nil), exchangeAsync(c1, nil)
	if res := await(t, "Exchange", r0); res.err != nil {
		t.Fatal(res.err)
	}
	if res := await(t, "Exchange", r1); res.err != nil {
		t.Fatal(res.err)
	}
	j.noEvent()
}

func TestRegistrationChecks(t *testing.T) {
	j := newJob(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	e := j.env(1)
	e.Size = 3
	if _, err := Dial(ctx, e); err == nil || !strings.Contains(err.Error(), "3 ranks") {
		t.Errorf("Dial with the wrong size: %v", err)
	}
	e = j.env(2)
	e.Size = 2
	if _, err := Dial(ctx, e); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("Dial with rank 2 of 2: %v", err)
	}
	cancelled, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	if _, err := Dial(cancelled, j.env(0)); err == nil {
		t.Error("Dial with a cancelled context succeeded")
	}
}

func TestLostRankFailsExchange(t *testing.T) {
	j := newJob(t, 3)
	contributed := j.hookContributions()
	c0, c1, c2 := j.dial(0), j.dial(1), j.dial(2)
	r0, r1 := exchangeAsync(c0, []byte("x")), exchangeAsync(c1, []byte("y"))
	await(t, "first contribution", contributed)
	await(t, "second contribution", contributed)

	// Rank 2 dies: its socket closes without the goodbye.
	c2.conn.Close()

	for rank, ch := range []<-chan exchangeResult{r0, r1} {
		res := await(t, "Exchange", ch)
		var re *RankError
		if !errors.As(res.err, &re) || re.Rank != 2 || re.Kind != EventLost {
			t.Fatalf("rank %d Exchange error %v, want a RankError for lost rank 2", rank, res.err)
		}
		if !strings.Contains(res.err.Error(), "rank 2 was lost") {
			t.Errorf("rank %d Exchange error %q does not name rank 2", rank, res.err)
		}
	}
	if ev := j.nextEvent(); ev.Rank != 2 || ev.Kind != EventLost {
		t.Fatalf("event %v, want rank 2 lost", ev)
	}
	// The failure is sticky.
	if _, err := c0.Exchange(context.Background(), nil); err == nil {
		t.Error("Exchange after a lost rank succeeded")
	}
	await(t, "rank 2 Lost", c2.Lost())
}

func TestAbortFailsExchange(t *testing.T) {
	j := newJob(t, 3)
	contributed := j.hookContributions()
	c0, c1, c2 := j.dial(0), j.dial(1), j.dial(2)
	r0, r1 := exchangeAsync(c0, nil), exchangeAsync(c1, nil)
	await(t, "first contribution", contributed)
	await(t, "second contribution", contributed)
	if err := c2.Abort("bad input"); err != nil {
		t.Fatal(err)
	}
	if ev := j.nextEvent(); ev != (Event{Rank: 2, Kind: EventAbort, Msg: "bad input"}) {
		t.Fatalf("event %v, want rank 2 abort", ev)
	}
	for rank, ch := range []<-chan exchangeResult{r0, r1} {
		res := await(t, "Exchange", ch)
		var re *RankError
		if !errors.As(res.err, &re) || re.Rank != 2 || re.Kind != EventAbort || re.Msg != "bad input" {
			t.Fatalf("rank %d Exchange error %v, want rank 2's abort", rank, res.err)
		}
	}
	if err := c2.Close(); err != nil {
		t.Errorf("Close after Abort: %v", err)
	}
	if ev := j.nextEvent(); ev.Rank != 2 || ev.Kind != EventFinalized {
		t.Fatalf("event %v, want rank 2 finalized", ev)
	}
}

func TestFinalizedRankFailsExchange(t *testing.T) {
	t.Run("before", func(t *testing.T) {
		j := newJob(t, 2)
		c0, c1 := j.dial(0), j.dial(1)
		if err := c0.Close(); err != nil {
			t.Fatal(err)
		}
		res := await(t, "Exchange", exchangeAsync(c1, nil))
		var re *RankError
		if !errors.As(res.err, &re) || re.Rank != 0 || re.Kind != EventFinalized {
			t.Fatalf("Exchange error %v, want rank 0 finalized", res.err)
		}
	})
	t.Run("during", func(t *testing.T) {
		j := newJob(t, 2)
		contributed := j.hookContributions()
		c0, c1 := j.dial(0), j.dial(1)
		r1 := exchangeAsync(c1, nil)
		await(t, "contribution", contributed)
		if err := c0.Close(); err != nil {
			t.Fatal(err)
		}
		res := await(t, "Exchange", r1)
		var re *RankError
		if !errors.As(res.err, &re) || re.Rank != 0 || re.Kind != EventFinalized {
			t.Fatalf("Exchange error %v, want rank 0 finalized", res.err)
		}
	})
}

func TestCoordinatorLost(t *testing.T) {
	j := newJob(t, 2)
	c0 := j.dial(0)
	r0 := exchangeAsync(c0, nil)
	j.coord.Close()
	await(t, "Lost", c0.Lost())
	if res := await(t, "Exchange", r0); !errors.Is(res.err, ErrCoordLost) {
		t.Fatalf("Exchange error %v, want ErrCoordLost", res.err)
	}
	if err := c0.Abort("x"); !errors.Is(err, ErrCoordLost) {
		t.Errorf("Abort error %v, want ErrCoordLost", err)
	}
	if err := c0.Close(); err != nil {
		t.Errorf("Close after loss: %v", err)
	}
}

func TestCloseWakesExchange(t *testing.T) {
	j := newJob(t, 2)
	contributed := j.hookContributions()
	c0 := j.dial(0)
	r0 := exchangeAsync(c0, nil)
	await(t, "contribution", contributed)
	if err := c0.Close(); err != nil {
		t.Fatal(err)
	}
	if res := await(t, "Exchange", r0); !errors.Is(res.err, ErrClosed) {
		t.Fatalf("Exchange error %v, want ErrClosed", res.err)
	}
	select {
	case <-c0.Lost():
		t.Error("Lost closed after an orderly Close")
	default:
	}
}

func TestExchangeContext(t *testing.T) {
	j := newJob(t, 2)
	contributed := j.hookContributions()
	c0 := j.dial(0)
	ctx, cancel := context.WithCancel(context.Background())
	ch := async(func() error { _, err := c0.Exchange(ctx, nil); return err })
	await(t, "contribution", contributed)
	cancel()
	if err := await(t, "Exchange", ch); !errors.Is(err, context.Canceled) {
		t.Fatalf("Exchange error %v, want context.Canceled", err)
	}
	if _, err := c0.Exchange(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "abandoned") {
		t.Fatalf("Exchange after an abandoned one: %v", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, msgBye})
	res, _ := encodeResult(3, [][]byte{[]byte("a"), nil, []byte("bc")})
	var buf bytes.Buffer
	writeFrame(&buf, msgResult, res)
	f.Add(buf.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, body, err := readFrame(bufio.NewReader(bytes.NewReader(b)), 1<<16)
		if err != nil {
			return
		}
		switch typ {
		case msgResult:
			decodeResult(body, 3)
		case msgFail:
			decodeFail(body)
		case msgHello:
			decodeHello(body)
		case msgExchange:
			decodeExchange(body)
		}
	})
}

func TestFailingIsReportedOnce(t *testing.T) {
	j := newJob(t, 2)
	c0, c1 := j.dial(0), j.dial(1)
	for range 3 {
		if err := c1.Failing("world rank 0 lost"); err != nil {
			t.Fatal(err)
		}
	}
	if ev := j.nextEvent(); ev != (Event{Rank: 1, Kind: EventFailing, Msg: "world rank 0 lost"}) {
		t.Fatalf("event %v, want rank 1 failing", ev)
	}
	// Failing is informational: exchanges still complete.
	r0, r1 := exchangeAsync(c0, data(0, 0)), exchangeAsync(c1, data(1, 0))
	for _, ch := range []<-chan exchangeResult{r0, r1} {
		if res := await(t, "Exchange", ch); res.err != nil {
			t.Fatal(res.err)
		}
	}
	c1.Close()
	if ev := j.nextEvent(); ev.Rank != 1 || ev.Kind != EventFinalized {
		t.Fatalf("event %v, want rank 1 finalized (and no second failing)", ev)
	}
}

// countingListener is a listener the test hands to the coordinator.
type countingListener struct {
	net.Listener
	accepts atomic.Int32
	closed  atomic.Bool
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepts.Add(1)
	}
	return c, err
}

func (l *countingListener) Close() error {
	l.closed.Store(true)
	return l.Listener.Close()
}

// A coordinator given a listener accepts the ranks there (a launcher's
// listener on an address remote hosts reach, or an agent's relay) and
// closes it.
func TestCoordinatorListener(t *testing.T) {
	checkGoroutines(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: inner}
	secret := make([]byte, 32)
	c, err := NewCoordinator(CoordConfig{Size: 2, Secret: secret, Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr() != inner.Addr().String() {
		t.Fatalf("Addr %s, want the listener's %s", c.Addr(), inner.Addr())
	}
	j := &job{t: t, coord: c, secret: secret, size: 2, log: &lockedBuffer{}}
	errs := make([]<-chan error, 2)
	for rank := range 2 {
		errs[rank] = async(func() error {
			cl := j.dial(rank)
			if _, err := cl.Exchange(context.Background(), []byte{byte(rank)}); err != nil {
				return err
			}
			return cl.Close()
		})
	}
	for _, ch := range errs {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	if ln.accepts.Load() != 2 || !ln.closed.Load() {
		t.Fatalf("the listener accepted %d connections (want 2), closed %v (want true)", ln.accepts.Load(), ln.closed.Load())
	}
}
