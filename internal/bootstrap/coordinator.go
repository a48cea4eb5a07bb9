package bootstrap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/gorun-hpc/gorun/internal/auth"
)

// CoordConfig configures a Coordinator. Size and Secret are required; the
// zero value of every other field is its default.
type CoordConfig struct {
	Size   int    // number of ranks in the job, ≥ 1
	Secret []byte // job secret every rank proves it holds, ≥ MinSecretLen bytes
	Listen string // TCP address to listen on; "" means "127.0.0.1:0"
	// Listener, if set, is where the coordinator accepts ranks instead of
	// listening on Listen: one the launcher opened on an address its
	// remote hosts reach, or a relay's (an agent forwarding its host's
	// ranks). The coordinator closes it.
	Listener net.Listener
	Logger   *slog.Logger // nil means discard
}

func (cfg *CoordConfig) validate() error {
	if cfg.Size < 1 {
		return fmt.Errorf("bootstrap: CoordConfig.Size = %d, want at least 1", cfg.Size)
	}
	if int64(cfg.Size) >= int64(CoordID) {
		return fmt.Errorf("bootstrap: CoordConfig.Size = %d is too large", cfg.Size)
	}
	if len(cfg.Secret) < MinSecretLen {
		return fmt.Errorf("bootstrap: CoordConfig.Secret has %d bytes, want at least %d", len(cfg.Secret), MinSecretLen)
	}
	return nil
}

// A Coordinator is the job's rendezvous point, run by the launcher. It
// accepts one authenticated connection per rank, serves Exchange rounds,
// and reports what happens to each rank on Events.
//
// A connection that fails auth is logged and dropped; the job goes on.
type Coordinator struct {
	secret []byte
	size   int
	log    *slog.Logger
	ln     net.Listener
	events chan Event
	wg     sync.WaitGroup
	once   sync.Once

	mu      sync.Mutex
	closed  bool
	conns   map[net.Conn]bool // every open connection: is it a registered rank's?
	serving sync.WaitGroup    // connection goroutines
	members []*member         // by rank; nil until the rank registers
	fail    *RankError        // first abort or loss; makes every later exchange fail
	round   round

	// onContribute, when set by a test, is called (outside mu) after a
	// rank's contribution to an exchange was recorded.
	onContribute func(rank int, seq uint64)
}

// round is the exchange in progress. Exchange is a collective, so a rank
// can only send round k+1 after receiving round k's result, which goes out
// when all ranks sent k: the coordinator never holds two rounds at once.
type round struct {
	seq  uint64 // of the last completed round, or of the one in progress
	open bool   // seq is in progress
	data [][]byte
	have int
}

type memberState int

const (
	stateActive memberState = iota
	stateFinalized
	stateLost
)

type member struct {
	rank    int
	link    *link // the connection the rank's frames travel on
	state   memberState
	aborted bool
	failing bool // EventFailing emitted (once per rank)
}

// NewCoordinator listens on cfg.Listen and starts serving. The caller must
// Close it.
func NewCoordinator(cfg CoordConfig) (*Coordinator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ln := cfg.Listener
	if ln == nil {
		addr := cfg.Listen
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, fmt.Errorf("bootstrap: coordinator listen: %w", err)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{
		secret: append([]byte(nil), cfg.Secret...),
		size:   cfg.Size,
		log:    log,
		ln:     ln,
		// Each rank yields at most an abort and one of finalized/lost, so
		// this capacity means emit never has to drop.
		events:  make(chan Event, 3*cfg.Size+8),
		conns:   make(map[net.Conn]bool),
		members: make([]*member, cfg.Size),
	}
	c.wg.Add(1)
	go c.acceptLoop()
	return c, nil
}

// Addr returns the host:port ranks dial, for GORUN_COORD.
func (c *Coordinator) Addr() string { return c.ln.Addr().String() }

// Events returns the channel of rank events. It is buffered so that the
// coordinator never blocks on it, and it is closed by Close. A consumer that
// stops reading loses nothing but its own view.
func (c *Coordinator) Events() <-chan Event { return c.events }

// Close stops listening, closes every connection (ranks see their Lost
// channel close), waits for the coordinator's goroutines and closes the
// Events channel. It is idempotent.
func (c *Coordinator) Close() error {
	var err error
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		conns := make([]net.Conn, 0, len(c.conns))
		for conn := range c.conns {
			conns = append(conns, conn)
		}
		c.mu.Unlock()
		err = c.ln.Close()
		for _, conn := range conns {
			conn.Close()
		}
		c.wg.Wait()
		close(c.events)
	})
	return err
}

// Shutdown is Close for a job whose ranks have all exited: it stops
// accepting, drops connections still in their handshake, and waits for
// the ranks' connections to end by themselves (until ctx is done) before
// closing. A rank's last messages, such as an Abort sent just before the
// rank exited, are still in flight when its exit is observed; Close could
// discard them, Shutdown delivers them on Events.
func (c *Coordinator) Shutdown(ctx context.Context) error {
	c.ln.Close()
	c.mu.Lock()
	for conn, registered := range c.conns {
		if !registered {
			conn.Close()
		}
	}
	c.mu.Unlock()
	done := make(chan struct{})
	go func() {
		c.serving.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	c.Close()
	<-done
	return ctx.Err()
}

func (c *Coordinator) acceptLoop() {
	defer c.wg.Done()
	var backoff time.Duration
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: retry, as
			// net/http.Server does, instead of losing the job.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			c.log.Warn("bootstrap: coordinator accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			conn.Close()
			return
		}
		c.conns[conn] = false
		c.wg.Add(1)
		c.serving.Add(1)
		c.mu.Unlock()
		go c.serve(conn)
	}
}

func (c *Coordinator) serve(conn net.Conn) {
	defer c.wg.Done()
	defer c.serving.Done()
	defer func() {
		conn.Close()
		c.mu.Lock()
		delete(c.conns, conn)
		c.mu.Unlock()
	}()
	m, br := c.register(conn)
	if m == nil {
		return
	}
	c.readLoop(m, br)
}

// register runs auth and the hello on a new connection under
// HandshakeTimeout. It returns nil when the connection was refused.
func (c *Coordinator) register(conn net.Conn) (*member, *bufio.Reader) {
	remote := conn.RemoteAddr().String()
	conn.SetDeadline(time.Now().Add(HandshakeTimeout))
	peer, err := auth.Accept(conn, c.secret, authPurpose, CoordID)
	if err != nil {
		if !c.isClosed() {
			c.log.Warn("bootstrap: dropped a connection that failed auth", "remote", remote, "err", err)
		}
		return nil, nil
	}
	br := bufio.NewReader(conn)
	typ, body, err := readFrame(br, maxHello)
	if err == nil && typ != msgHello {
		err = fmt.Errorf("%w: type %d before hello", errFrame, typ)
	}
	var version uint16
	var size int
	if err == nil {
		version, size, err = decodeHello(body)
	}
	if err != nil {
		if !c.isClosed() {
			c.log.Warn("bootstrap: dropped a connection without a valid hello", "remote", remote, "rank", peer, "err", err)
		}
		return nil, nil
	}
	reject := func(reason string) (*member, *bufio.Reader) {
		c.log.Warn("bootstrap: refused a rank", "remote", remote, "rank", peer, "reason", reason)
		writeFrame(conn, msgReject, []byte(reason))
		return nil, nil
	}
	if peer == GatherID {
		// An agent's gatherer: its ranks register over it (coordgroup.go).
		if version != protoVersion {
			return reject(fmt.Sprintf("agent speaks protocol version %d, coordinator %d", version, protoVersion))
		}
		l := &link{conn: conn, group: true}
		c.mu.Lock()
		c.conns[conn] = true
		c.mu.Unlock()
		err := writeFrame(conn, msgWelcome)
		conn.SetDeadline(time.Time{})
		if err != nil {
			return nil, nil
		}
		c.groupLoop(l, br)
		return nil, nil
	}
	m, why, err := c.join(&link{conn: conn}, int(peer), version, size)
	if why != "" {
		return reject(why)
	}
	conn.SetDeadline(time.Time{})
	if err != nil {
		c.lost(m, err)
		return nil, nil
	}
	c.log.Debug("bootstrap: rank registered", "rank", m.rank, "remote", remote)
	return m, br
}

// join registers rank on l and welcomes it, or says why it is refused.
func (c *Coordinator) join(l *link, rank int, version uint16, size int) (m *member, reject string, err error) {
	switch {
	case version != protoVersion:
		return nil, fmt.Sprintf("protocol version %d, coordinator speaks %d", version, protoVersion), nil
	case size != c.size:
		return nil, fmt.Sprintf("rank %d was told the job has %d ranks, the coordinator has %d", rank, size, c.size), nil
	case rank < 0 || rank >= c.size:
		return nil, fmt.Sprintf("rank %d out of range for a job of %d ranks", rank, c.size), nil
	}
	m = &member{rank: rank, link: l}
	// Hold the link's write lock across registration and the welcome, so
	// that a failure broadcast that sees the new member cannot get ahead
	// of the welcome.
	l.wmu.Lock()
	defer l.wmu.Unlock()
	c.mu.Lock()
	if c.members[m.rank] != nil {
		c.mu.Unlock()
		return nil, fmt.Sprintf("rank %d already registered (each rank connects once)", m.rank), nil
	}
	c.members[m.rank] = m
	c.conns[l.conn] = true
	fail := c.fail
	c.mu.Unlock()
	err = l.writeLocked(rank, msgWelcome, nil)
	if err == nil && fail != nil {
		err = l.writeLocked(rank, msgFail, encodeFail(fail.Rank, fail.Kind, fail.Msg))
	}
	return m, "", err
}

func (c *Coordinator) readLoop(m *member, br *bufio.Reader) {
	for {
		typ, body, err := readFrame(br, maxFrame)
		if err != nil {
			c.lost(m, err)
			return
		}
		switch typ {
		case msgExchange:
			seq, data, err := decodeExchange(body)
			if err == nil {
				err = c.contribute(m, seq, data)
			}
			if err != nil {
				c.lost(m, err)
				return
			}
		case msgAbort:
			c.abort(m, string(body))
		case msgFailing:
			c.failing(m, string(body))
		case msgBye:
			c.finalize(m)
			return
		default:
			c.lost(m, fmt.Errorf("%w: unexpected message type %d", errFrame, typ))
			return
		}
	}
}

// contribute records rank m's data for exchange seq and, when it is the
// last one, sends the gathered result to every rank.
func (c *Coordinator) contribute(m *member, seq uint64, data []byte) error {
	c.mu.Lock()
	if c.fail != nil {
		fail := *c.fail
		c.mu.Unlock()
		c.send(m, msgFail, encodeFail(fail.Rank, fail.Kind, fail.Msg))
		return nil
	}
	r := &c.round
	want := r.seq
	if !r.open {
		want++
	}
	if seq != want {
		c.mu.Unlock()
		return fmt.Errorf("protocol error: rank %d sent exchange %d, expected %d", m.rank, seq, want)
	}
	if !r.open {
		*r = round{seq: seq, open: true, data: make([][]byte, c.size)}
	}
	if r.data[m.rank] != nil {
		c.mu.Unlock()
		return fmt.Errorf("protocol error: rank %d sent exchange %d twice", m.rank, seq)
	}
	if data == nil {
		data = []byte{} // nil marks "not yet contributed"
	}
	r.data[m.rank] = data
	r.have++
	hook := c.onContribute
	if r.have < c.size {
		// A rank that already closed can never contribute: fail now
		// rather than leave the others waiting.
		gone := c.goneLocked()
		var targets []*member
		if gone >= 0 {
			targets = c.contributorsLocked()
		}
		c.mu.Unlock()
		if hook != nil {
			hook(m.rank, seq)
		}
		c.sendAll(targets, msgFail, encodeFail(gone, EventFinalized, ""))
		return nil
	}
	body, err := encodeResult(seq, r.data)
	*r = round{seq: seq}
	targets := c.activeLocked()
	c.mu.Unlock()
	if hook != nil {
		hook(m.rank, seq)
	}
	if err != nil {
		// Too big for one frame: a usage error the ranks must hear about,
		// blamed on the rank that completed the round.
		c.sendAll(targets, msgFail, encodeFail(m.rank, EventLost, err.Error()))
		return nil
	}
	c.sendAll(targets, msgResult, body)
	return nil
}

// goneLocked returns a finalized rank that has not contributed to the
// open round, or -1.
func (c *Coordinator) goneLocked() int {
	for rank, m := range c.members {
		if m != nil && m.state == stateFinalized && c.round.data[rank] == nil {
			return rank
		}
	}
	return -1
}

func (c *Coordinator) contributorsLocked() []*member {
	var ms []*member
	for rank, m := range c.members {
		if m != nil && m.state == stateActive && c.round.data[rank] != nil {
			ms = append(ms, m)
		}
	}
	return ms
}

func (c *Coordinator) activeLocked() []*member {
	var ms []*member
	for _, m := range c.members {
		if m != nil && m.state == stateActive {
			ms = append(ms, m)
		}
	}
	return ms
}

func (c *Coordinator) abort(m *member, msg string) {
	c.mu.Lock()
	if m.aborted {
		c.mu.Unlock()
		return
	}
	m.aborted = true
	var targets []*member
	if c.fail == nil {
		c.fail = &RankError{Rank: m.rank, Kind: EventAbort, Msg: msg}
		targets = c.activeLocked()
	}
	c.mu.Unlock()
	c.log.Info("bootstrap: rank aborted the job", "rank", m.rank, "cause", msg)
	c.emit(Event{Rank: m.rank, Kind: EventAbort, Msg: msg})
	c.sendAll(targets, msgFail, encodeFail(m.rank, EventAbort, msg))
}

// failing reports, once per rank, that rank m fails because of another.
func (c *Coordinator) failing(m *member, msg string) {
	c.mu.Lock()
	first := !m.failing
	m.failing = true
	c.mu.Unlock()
	if first {
		c.emit(Event{Rank: m.rank, Kind: EventFailing, Msg: msg})
	}
}

func (c *Coordinator) finalize(m *member) {
	c.mu.Lock()
	m.state = stateFinalized
	var targets []*member
	if c.round.open && c.round.data[m.rank] == nil && c.fail == nil {
		targets = c.contributorsLocked()
	}
	c.mu.Unlock()
	c.log.Debug("bootstrap: rank finalized", "rank", m.rank)
	c.emit(Event{Rank: m.rank, Kind: EventFinalized})
	c.sendAll(targets, msgFail, encodeFail(m.rank, EventFinalized, ""))
}

// lost marks m lost and fails the job's exchanges, unless the coordinator
// itself is closing (then the drop is ours, not the rank's).
func (c *Coordinator) lost(m *member, err error) {
	c.mu.Lock()
	if c.closed || m.state != stateActive {
		c.mu.Unlock()
		return
	}
	m.state = stateLost
	msg := lostReason(err)
	var targets []*member
	if c.fail == nil {
		c.fail = &RankError{Rank: m.rank, Kind: EventLost, Msg: msg}
		targets = c.activeLocked()
	}
	c.mu.Unlock()
	if !m.link.group { // a gatherer's link carries other ranks too
		m.link.conn.Close()
	}
	c.log.Info("bootstrap: rank lost", "rank", m.rank, "reason", msg)
	c.emit(Event{Rank: m.rank, Kind: EventLost, Msg: msg})
	c.sendAll(targets, msgFail, encodeFail(m.rank, EventLost, msg))
}

func lostReason(err error) string {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without Close"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	return err.Error()
}

// sendAll sends a job-wide frame (a result or a failure) to ms: once per
// connection, so a gatherer gets one copy for all its ranks.
func (c *Coordinator) sendAll(ms []*member, typ byte, body []byte) {
	var sent []*link
	for _, m := range ms {
		if m.link.group {
			if slices.Contains(sent, m.link) {
				continue
			}
			sent = append(sent, m.link)
		}
		c.send(m, typ, body)
	}
}

// send writes one frame to m. A failed write closes the connection, so
// m's reader reports it lost.
func (c *Coordinator) send(m *member, typ byte, body []byte) {
	m.link.wmu.Lock()
	err := m.link.writeLocked(m.rank, typ, body)
	m.link.wmu.Unlock()
	if err != nil {
		if !c.isClosed() {
			c.log.Warn("bootstrap: write to rank failed", "rank", m.rank, "err", err)
		}
		m.link.conn.Close()
	}
}

func (c *Coordinator) emit(ev Event) {
	select {
	case c.events <- ev:
	default:
		c.log.Error("bootstrap: event channel full, dropped an event", "event", ev.String())
	}
}

func (c *Coordinator) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}
