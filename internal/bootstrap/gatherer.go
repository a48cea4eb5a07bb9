package bootstrap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gorun-hpc/gorun/internal/auth"
)

// GatherConfig configures a Gatherer.
type GatherConfig struct {
	// Secret is the job's secret: the gatherer proves it to the
	// coordinator and checks it on every rank that connects.
	Secret []byte
	// Upstream is a connection to the coordinator. The Gatherer owns it.
	Upstream net.Conn
	// Listener is where this host's ranks connect (their GORUN_COORD).
	// The Gatherer owns it.
	Listener net.Listener
	// Ranks is how many ranks run on this host. An exchange goes to the
	// coordinator once each of them contributed or is done.
	Ranks int
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

// A Gatherer is an agent's end of the coordinator protocol for the ranks of
// its host (the protocol is in coordgroup.go and docs/launch.md). Ranks
// connect to it exactly as they would to the coordinator; it forwards their
// registrations and messages over one connection, sends each exchange
// upward once for the whole host and hands each result to all its ranks.
//
// Done and Close may be called from any goroutine.
type Gatherer struct {
	cfg GatherConfig
	log *slog.Logger
	up  net.Conn
	umu sync.Mutex // serializes frames written to up
	wg  sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	locals  map[int]*localRank // registered, not done
	pending map[int]*localRank // hello forwarded, answer awaited
	done    map[int]bool       // said goodbye, lost, or exited
	seq     uint64             // of the open round
	contrib []contribution     // the open round's contributions
	fail    []byte             // the job's failure, once known: sent to late ranks too

	// onFlush, when set by a test, is called (under mu) with each round
	// sent upward.
	onFlush func(seq uint64, ranks int)
}

type localRank struct {
	rank     int
	conn     net.Conn
	br       *bufio.Reader
	wmu      sync.Mutex
	answered chan bool // the coordinator's answer to the hello: welcomed?
}

// NewGatherer authenticates to the coordinator over cfg.Upstream and starts
// serving the ranks that connect to cfg.Listener. ctx bounds the handshake.
func NewGatherer(ctx context.Context, cfg GatherConfig) (*Gatherer, error) {
	if len(cfg.Secret) < MinSecretLen || cfg.Upstream == nil || cfg.Listener == nil || cfg.Ranks < 1 {
		return nil, errors.New("bootstrap: NewGatherer: incomplete GatherConfig")
	}
	g := &Gatherer{cfg: cfg, log: cfg.Logger, up: cfg.Upstream,
		locals: map[int]*localRank{}, pending: map[int]*localRank{}, done: map[int]bool{}}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	deadline := time.Now().Add(HandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	g.up.SetDeadline(deadline)
	br := bufio.NewReader(g.up)
	err := auth.Dial(g.up, cfg.Secret, authPurpose, GatherID, CoordID)
	if err == nil {
		err = writeFrame(g.up, msgHello, encodeHello(0))
	}
	var typ byte
	var body []byte
	if err == nil {
		typ, body, err = readFrame(br, maxText+1)
	}
	if err == nil && typ == msgReject {
		err = fmt.Errorf("refused: %s", body)
	} else if err == nil && typ != msgWelcome {
		err = fmt.Errorf("%w: type %d instead of welcome", errFrame, typ)
	}
	if err != nil {
		g.up.Close()
		cfg.Listener.Close()
		return nil, fmt.Errorf("bootstrap: gatherer: %w", err)
	}
	g.up.SetDeadline(time.Time{})
	g.wg.Add(2)
	go g.readUp(br)
	go g.accept()
	return g, nil
}

// Close drops every connection and waits for the Gatherer's goroutines.
func (g *Gatherer) Close() error {
	g.shut()
	g.wg.Wait()
	return nil
}

func (g *Gatherer) shut() {
	g.mu.Lock()
	g.closed = true
	var conns []net.Conn
	for _, l := range g.locals {
		conns = append(conns, l.conn)
	}
	for _, l := range g.pending {
		conns = append(conns, l.conn)
	}
	g.mu.Unlock()
	g.cfg.Listener.Close()
	g.up.Close()
	for _, c := range conns {
		c.Close()
	}
}

// Done tells the gatherer that rank's process ended (an exit the agent
// reaped): the rank will contribute nothing more. Once every rank of the
// host is done, the gatherer closes its connection to the coordinator.
func (g *Gatherer) Done(rank int) {
	g.mu.Lock()
	g.finishLocked(rank)
	g.mu.Unlock()
}

// finishLocked marks rank done, sends a round it completes and ends the
// link when the host has no ranks left.
func (g *Gatherer) finishLocked(rank int) {
	if g.done[rank] {
		return
	}
	g.done[rank] = true
	delete(g.locals, rank)
	g.flushLocked()
	if len(g.done) >= g.cfg.Ranks && !g.closed {
		g.closed = true
		go g.shut()
	}
}

// flushLocked sends the open round upward when every rank of the host has
// contributed to it or is done.
func (g *Gatherer) flushLocked() {
	if len(g.contrib) == 0 {
		return
	}
	n := len(g.done)
	for _, c := range g.contrib {
		if !g.done[c.rank] {
			n++
		}
	}
	if n < g.cfg.Ranks {
		return
	}
	body := encodeGather(g.seq, g.contrib)
	if g.onFlush != nil {
		g.onFlush(g.seq, len(g.contrib))
	}
	g.contrib = nil
	g.writeUp(msgGather, body)
}

func (g *Gatherer) writeUp(typ byte, body ...[]byte) {
	g.umu.Lock()
	defer g.umu.Unlock()
	g.up.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := writeFrame(g.up, typ, body...); err != nil {
		g.up.Close() // the reader sees it and ends the host's ranks
	}
}

func (l *localRank) write(typ byte, body []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	err := writeFrame(l.conn, typ, body)
	if err != nil {
		l.conn.Close()
	}
	return err
}

// readUp hands the coordinator's frames to the host's ranks. When the
// coordinator is gone, so is every rank's connection.
func (g *Gatherer) readUp(br *bufio.Reader) {
	defer g.wg.Done()
	defer g.shut()
	for {
		typ, body, err := readFrame(br, maxFrame)
		if err != nil {
			return
		}
		switch typ {
		case msgResult, msgFail:
			g.mu.Lock()
			if typ == msgFail && g.fail == nil {
				g.fail = body
			}
			ls := make([]*localRank, 0, len(g.locals))
			for _, l := range g.locals {
				ls = append(ls, l)
			}
			g.mu.Unlock()
			for _, l := range ls {
				l.write(typ, body)
			}
		case msgFor:
			rank, inner, b, err := decodeFor(body)
			if err != nil {
				return
			}
			g.mu.Lock()
			l := g.pending[rank]
			delete(g.pending, rank)
			ok := inner == msgWelcome && l != nil && !g.closed
			if ok {
				// Results and failures are written by this goroutine
				// only, so none can overtake the welcome.
				g.locals[rank] = l
			}
			fail := g.fail
			g.mu.Unlock()
			if l == nil {
				continue
			}
			if ok {
				if l.write(msgWelcome, nil) == nil && fail != nil {
					l.write(msgFail, fail)
				}
			} else {
				if inner == msgWelcome {
					b = []byte("the agent is closing")
				}
				l.write(msgReject, b)
			}
			l.answered <- ok
		default:
			g.log.Warn("bootstrap: gatherer: unexpected message from the coordinator", "type", typ)
			return
		}
	}
}

func (g *Gatherer) accept() {
	defer g.wg.Done()
	for {
		conn, err := g.cfg.Listener.Accept()
		if err != nil {
			return
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			defer conn.Close()
			g.serve(conn)
		}()
	}
}

// serve registers one rank through the coordinator, then forwards its
// frames until it says goodbye or its connection drops.
func (g *Gatherer) serve(conn net.Conn) {
	conn.SetDeadline(time.Now().Add(HandshakeTimeout))
	peer, err := auth.Accept(conn, g.cfg.Secret, authPurpose, CoordID)
	if err != nil {
		g.log.Warn("bootstrap: gatherer dropped a connection that failed auth", "remote", conn.RemoteAddr().String(), "err", err)
		return
	}
	rank := int(peer)
	br := bufio.NewReader(conn)
	typ, body, err := readFrame(br, maxHello)
	if err != nil || typ != msgHello {
		return
	}
	l := &localRank{rank: rank, conn: conn, br: br, answered: make(chan bool, 1)}
	g.mu.Lock()
	busy := g.closed || g.pending[rank] != nil || g.locals[rank] != nil || g.done[rank]
	if !busy {
		g.pending[rank] = l
	}
	g.mu.Unlock()
	if busy {
		writeFrame(conn, msgReject, fmt.Appendf(nil, "rank %d already registered (each rank connects once)", rank))
		return
	}
	g.writeUp(msgFor, encodeFor(rank, msgHello), body)
	select {
	case ok := <-l.answered:
		if !ok {
			return
		}
	case <-time.After(HandshakeTimeout):
		g.mu.Lock()
		delete(g.pending, rank)
		g.mu.Unlock()
		return
	}
	conn.SetDeadline(time.Time{})
	g.readLocal(l)
}

// readLocal forwards one registered rank's frames.
func (g *Gatherer) readLocal(l *localRank) {
	for {
		typ, body, err := readFrame(l.br, maxFrame)
		if err != nil {
			g.writeUp(msgFor, encodeFor(l.rank, msgLost), []byte(lostReason(err)))
			g.Done(l.rank)
			return
		}
		switch typ {
		case msgExchange:
			seq, data, err := decodeExchange(body)
			g.mu.Lock()
			if err == nil && len(g.contrib) > 0 && seq != g.seq {
				err = fmt.Errorf("protocol error: rank %d sent exchange %d while the host gathers %d", l.rank, seq, g.seq)
			}
			if err == nil {
				g.seq = seq
				g.contrib = append(g.contrib, contribution{l.rank, append([]byte{}, data...)})
				g.flushLocked()
			}
			g.mu.Unlock()
			if err != nil {
				g.writeUp(msgFor, encodeFor(l.rank, msgLost), []byte(err.Error()))
				g.Done(l.rank)
				return
			}
		case msgAbort, msgFailing:
			g.writeUp(msgFor, encodeFor(l.rank, typ), body)
		case msgBye:
			g.writeUp(msgFor, encodeFor(l.rank, msgBye), nil)
			g.Done(l.rank) // the deferred close acknowledges the goodbye
			return
		default:
			g.writeUp(msgFor, encodeFor(l.rank, msgLost), fmt.Appendf(nil, "unexpected message type %d", typ))
			g.Done(l.rank)
			return
		}
	}
}
