package bootstrap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Gathered registration: an agent's Gatherer (gatherer.go) terminates the
// coordinator connections of the ranks on its host and carries them to the
// coordinator over one connection, so that an exchange costs the
// coordinator one message in and one out per host instead of one round
// trip per rank.
//
// The gatherer proves the identity GatherID in the auth handshake and sends
// a hello (size 0). After the welcome, rank-specific frames travel wrapped
// in msgFor (u32 rank, u8 inner type, body): upstream the ranks' hello,
// abort, failing and bye, and msgLost when a rank's connection to the
// gatherer dropped; downstream the welcome or reject of a rank. The ranks'
// exchange contributions go up as one msgGather per round; results and
// failures come down once per gatherer, which hands them to all its ranks.

// GatherID is the identity a gatherer proves to the coordinator.
const GatherID = CoordID - 1

const (
	msgFor    = 10 // both ways: u32 rank, u8 type, body
	msgGather = 11 // gatherer → coord: u64 seq, u32 n, n × (u32 rank, u32 len, bytes)
	msgLost   = 12 // inside msgFor, gatherer → coord: text; the rank's connection dropped
)

// A link is one connection to the coordinator: one rank's, or a
// gatherer's carrying several.
type link struct {
	conn  net.Conn
	group bool
	wmu   sync.Mutex // serializes frames written to conn
}

// writeLocked writes one frame for rank; the caller holds wmu. On a group
// link a rank's own frames are wrapped in msgFor; job-wide ones (results,
// failures) go as they are.
func (l *link) writeLocked(rank int, typ byte, body []byte) error {
	l.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if l.group && (typ == msgWelcome || typ == msgReject) {
		return writeFrame(l.conn, msgFor, encodeFor(rank, typ), body)
	}
	return writeFrame(l.conn, typ, body)
}

func encodeFor(rank int, typ byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(rank)), typ)
}

func decodeFor(b []byte) (rank int, typ byte, body []byte, err error) {
	if len(b) < 5 {
		return 0, 0, nil, fmt.Errorf("%w: for-frame of %d bytes", errFrame, len(b))
	}
	return int(binary.LittleEndian.Uint32(b)), b[4], b[5:], nil
}

// contribution is one rank's data in a msgGather.
type contribution struct {
	rank int
	data []byte
}

func encodeGather(seq uint64, cs []contribution) []byte {
	n := 12
	for _, c := range cs {
		n += 8 + len(c.data)
	}
	b := make([]byte, 0, n)
	b = binary.LittleEndian.AppendUint64(b, seq)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(cs)))
	for _, c := range cs {
		b = binary.LittleEndian.AppendUint32(b, uint32(c.rank))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(c.data)))
		b = append(b, c.data...)
	}
	return b
}

func decodeGather(b []byte) (seq uint64, cs []contribution, err error) {
	if len(b) < 12 {
		return 0, nil, fmt.Errorf("%w: gather of %d bytes", errFrame, len(b))
	}
	seq = binary.LittleEndian.Uint64(b)
	n := int(binary.LittleEndian.Uint32(b[8:]))
	b = b[12:]
	for range n {
		if len(b) < 8 {
			return 0, nil, fmt.Errorf("%w: gather truncated", errFrame)
		}
		rank, l := int(binary.LittleEndian.Uint32(b)), int(binary.LittleEndian.Uint32(b[4:]))
		b = b[8:]
		if l > len(b) {
			return 0, nil, fmt.Errorf("%w: gather truncated", errFrame)
		}
		cs = append(cs, contribution{rank, b[:l:l]})
		b = b[l:]
	}
	if len(b) != 0 {
		return 0, nil, fmt.Errorf("%w: %d trailing bytes in gather", errFrame, len(b))
	}
	return seq, cs, nil
}

// groupLoop serves a gatherer's link until it ends; then every rank it
// carried that has not said goodbye is lost.
func (c *Coordinator) groupLoop(l *link, br *bufio.Reader) {
	ms := map[int]*member{}
	fail := func(err error) {
		for _, m := range ms {
			c.lost(m, err)
		}
	}
	for {
		typ, body, err := readFrame(br, maxFrame)
		if err != nil {
			fail(fmt.Errorf("its host's agent: %s", lostReason(err)))
			return
		}
		switch typ {
		case msgGather:
			var seq uint64
			var cs []contribution
			seq, cs, err = decodeGather(body)
			for _, ct := range cs {
				if err != nil {
					break
				}
				m := ms[ct.rank]
				if m == nil {
					err = fmt.Errorf("protocol error: exchange %d from rank %d, not registered on this agent", seq, ct.rank)
					break
				}
				err = c.contribute(m, seq, ct.data)
			}
		case msgFor:
			var rank int
			var inner byte
			rank, inner, body, err = decodeFor(body)
			if err == nil {
				err = c.groupFrame(l, ms, rank, inner, body)
			}
		default:
			err = fmt.Errorf("%w: unexpected message type %d from an agent", errFrame, typ)
		}
		if err != nil {
			c.log.Warn("bootstrap: dropped an agent's link", "err", err)
			fail(err)
			return
		}
	}
}

// groupFrame handles one rank's frame that came through a gatherer.
func (c *Coordinator) groupFrame(l *link, ms map[int]*member, rank int, typ byte, body []byte) error {
	if typ == msgHello {
		version, size, err := decodeHello(body)
		if err != nil {
			return err
		}
		m, why, err := c.join(l, rank, version, size)
		if why != "" {
			c.log.Warn("bootstrap: refused a rank", "rank", rank, "reason", why)
			l.wmu.Lock()
			err = l.writeLocked(rank, msgReject, []byte(why))
			l.wmu.Unlock()
			return err
		}
		if m != nil {
			ms[rank] = m
		}
		return err
	}
	m := ms[rank]
	if m == nil {
		return fmt.Errorf("protocol error: message type %d for rank %d, not registered on this agent", typ, rank)
	}
	switch typ {
	case msgAbort:
		c.abort(m, string(body))
	case msgFailing:
		c.failing(m, string(body))
	case msgBye:
		c.finalize(m)
		delete(ms, rank)
	case msgLost:
		c.lost(m, errors.New(string(body)))
		delete(ms, rank)
	default:
		return fmt.Errorf("%w: unexpected message type %d for rank %d", errFrame, typ, rank)
	}
	return nil
}
