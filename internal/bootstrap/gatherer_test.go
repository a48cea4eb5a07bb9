package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
)

// host is a gatherer in front of the coordinator for some of a job's ranks,
// as an agent runs one.
type host struct {
	g     *Gatherer
	addr  string
	mu    sync.Mutex
	sizes []int // ranks in each round sent upward
}

func (j *job) host(ranks int) *host {
	j.t.Helper()
	up, err := net.Dial("tcp", j.coord.Addr())
	if err != nil {
		j.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		j.t.Fatal(err)
	}
	g, err := NewGatherer(context.Background(), GatherConfig{Secret: j.secret, Upstream: up, Listener: ln, Ranks: ranks})
	if err != nil {
		j.t.Fatal(err)
	}
	h := &host{g: g, addr: ln.Addr().String()}
	g.mu.Lock()
	g.onFlush = func(_ uint64, n int) {
		h.mu.Lock()
		h.sizes = append(h.sizes, n)
		h.mu.Unlock()
	}
	g.mu.Unlock()
	j.t.Cleanup(func() { g.Close() })
	return h
}

func (j *job) dialVia(h *host, rank int) *Client {
	j.t.Helper()
	env := j.env(rank)
	env.Coord = h.addr
	c, err := Dial(context.Background(), env)
	if err != nil {
		j.t.Fatalf("Dial rank %d through a gatherer: %v", rank, err)
	}
	j.t.Cleanup(func() { c.Close() })
	return c
}

// Ranks behind two gatherers and ranks connected directly exchange as one
// job; each gatherer sends one message per round for all its ranks.
func TestGatheredExchange(t *testing.T) {
	const n, rounds = 7, 4
	j := newJob(t, n)
	a, b := j.host(3), j.host(2)
	clients := []*Client{j.dialVia(a, 0), j.dialVia(a, 1), j.dialVia(a, 2), j.dialVia(b, 3), j.dialVia(b, 4), j.dial(5), j.dial(6)}
	errs := make([]<-chan error, n)
	for rank, c := range clients {
		errs[rank] = async(func() error {
			for round := range rounds {
				got, err := c.Exchange(context.Background(), data(rank, round))
				if err != nil {
					return err
				}
				for r, p := range got {
					if !bytes.Equal(p, data(r, round)) {
						t.Errorf("rank %d round %d: part %d = %.40q", rank, round, r, p)
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
	for range n {
		if ev := j.nextEvent(); ev.Kind != EventFinalized {
			t.Errorf("event %v, want finalized", ev)
		}
	}
	for name, h := range map[string]*host{"a": a, "b": b} {
		want := h.g.cfg.Ranks
		h.mu.Lock()
		{
			for _, s := range h.sizes {
				if s != want {
					t.Errorf("host %s sent a round of %d ranks, want %d: %v", name, s, want, h.sizes)
				}
			}
		}
		if len(h.sizes) != rounds {
			t.Errorf("host %s sent %d rounds, want %d", name, len(h.sizes), rounds)
		}
		h.mu.Unlock()
	}
	// Every rank said goodbye: the gatherers leave, and Shutdown does not
	// wait for them.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := j.coord.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// A rank behind a gatherer that dies, aborts or leaves early fails the
// job's exchange exactly as a directly connected one does.
func TestGatheredFailures(t *testing.T) {
	t.Run("lost", func(t *testing.T) {
		j := newJob(t, 3)
		h := j.host(2)
		c0, c1, c2 := j.dial(0), j.dialVia(h, 1), j.dialVia(h, 2)
		r0, r1 := exchangeAsync(c0, nil), exchangeAsync(c1, nil)
		c2.conn.Close()
		for rank, ch := range []<-chan exchangeResult{r0, r1} {
			res := await(t, "Exchange", ch)
			var re *RankError
			if !errors.As(res.err, &re) || re.Rank != 2 || re.Kind != EventLost {
				t.Fatalf("rank %d Exchange error %v, want rank 2 lost", rank, res.err)
			}
		}
		if ev := j.nextEvent(); ev.Rank != 2 || ev.Kind != EventLost {
			t.Fatalf("event %v, want rank 2 lost", ev)
		}
	})
	t.Run("abort", func(t *testing.T) {
		j := newJob(t, 3)
		h := j.host(2)
		c0, c1, c2 := j.dial(0), j.dialVia(h, 1), j.dialVia(h, 2)
		r0, r1 := exchangeAsync(c0, nil), exchangeAsync(c1, nil)
		if err := c2.Abort("bad input"); err != nil {
			t.Fatal(err)
		}
		if ev := j.nextEvent(); ev != (Event{Rank: 2, Kind: EventAbort, Msg: "bad input"}) {
			t.Fatalf("event %v, want rank 2 abort", ev)
		}
		for rank, ch := range []<-chan exchangeResult{r0, r1} {
			res := await(t, "Exchange", ch)
			var re *RankError
			if !errors.As(res.err, &re) || re.Rank != 2 || re.Msg != "bad input" {
				t.Fatalf("rank %d Exchange error %v, want rank 2's abort", rank, res.err)
			}
		}
	})
	t.Run("finalized", func(t *testing.T) {
		j := newJob(t, 2)
		h := j.host(2)
		c0, c1 := j.dialVia(h, 0), j.dialVia(h, 1)
		r1 := exchangeAsync(c1, nil)
		if err := c0.Close(); err != nil {
			t.Fatal(err)
		}
		res := await(t, "Exchange", r1)
		var re *RankError
		if !errors.As(res.err, &re) || re.Rank != 0 || re.Kind != EventFinalized {
			t.Fatalf("Exchange error %v, want rank 0 finalized", res.err)
		}
	})
	t.Run("host", func(t *testing.T) {
		// The agent's link drops: its ranks see the coordinator lost, the
		// coordinator sees them lost, the other ranks' exchange fails.
		j := newJob(t, 3)
		h := j.host(2)
		c0, c1, c2 := j.dial(0), j.dialVia(h, 1), j.dialVia(h, 2)
		r0 := exchangeAsync(c0, nil)
		h.g.up.Close()
		await(t, "rank 1 Lost", c1.Lost())
		await(t, "rank 2 Lost", c2.Lost())
		res := await(t, "Exchange", r0)
		var re *RankError
		if !errors.As(res.err, &re) || re.Kind != EventLost || !strings.Contains(re.Msg, "agent") {
			t.Fatalf("Exchange error %v, want a rank lost with its agent", res.err)
		}
	})
}

// The gatherer checks the job's secret and each rank registers once.
func TestGathererRefuses(t *testing.T) {
	j := newJob(t, 2)
	h := j.host(2)
	env := j.env(0)
	env.Coord = h.addr
	env.Secret = bytes.Repeat([]byte{7}, len(j.secret))
	if c, err := Dial(context.Background(), env); err == nil {
		c.Close()
		t.Fatal("a client with the wrong secret registered through the gatherer")
	}
	c0 := j.dialVia(h, 0)
	env.Secret = j.secret
	if c, err := Dial(context.Background(), env); err == nil {
		c.Close()
		t.Fatal("rank 0 registered twice through the gatherer")
	}
	c1 := j.dialVia(h, 1)
	r0, r1 := exchangeAsync(c0, []byte("a")), exchangeAsync(c1, []byte("b"))
	for _, ch := range []<-chan exchangeResult{r0, r1} {
		if res := await(t, "Exchange", ch); res.err != nil || string(res.parts[1]) != "b" {
			t.Fatalf("Exchange after strangers: %v %q", res.err, res.parts)
		}
	}
}
