package bootstrap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// The coordinator protocol, documented in docs/launch.md.
//
// After auth (purpose "coord", dialer = rank, acceptor = CoordID) both sides
// exchange frames: a 4-byte little-endian length n, then n bytes whose first
// is the message type. The protocol is lock-step per rank (one Exchange at a
// time), so a plain framed TCP stream is enough; see the doc for why there is
// no yamux here.

// protoVersion is sent in msgHello; a mismatch is refused with msgReject.
const protoVersion = 1

// CoordID is the identity the coordinator proves in the auth handshake. It
// cannot collide with a rank, and it lets a rank tell the coordinator from a
// peer rank listening on a recycled port.
const CoordID = ^uint32(0) - 1

// authPurpose binds coordinator handshakes so they cannot be replayed to a
// rank's peer listener, and the other way round.
const authPurpose = "coord"

// HandshakeTimeout bounds auth plus registration on a new connection, on
// both sides: a stranger that connects and stalls is cut off by it.
const HandshakeTimeout = 10 * time.Second

// writeTimeout bounds one frame write. Ranks always read their connection,
// so hitting it means the peer is wedged; the connection is then dropped.
const writeTimeout = 30 * time.Second

// maxFrame bounds one frame. It protects against a corrupt length, not
// against authenticated peers, which are trusted.
const maxFrame = 1 << 30

// maxHello bounds the frames read before a rank is registered.
const maxHello = 64

// maxText bounds abort and failure messages.
const maxText = 64 << 10

// Message types.
const (
	msgHello    = 1 // rank → coord: u16 version, u32 size
	msgWelcome  = 2 // coord → rank: empty; registration accepted
	msgReject   = 3 // coord → rank: text; registration refused, conn closed
	msgExchange = 4 // rank → coord: u64 seq, data
	msgResult   = 5 // coord → rank: u64 seq, u32 n, n × (u32 len, bytes)
	msgAbort    = 6 // rank → coord: text (cause)
	msgFail     = 7 // coord → rank: u32 rank, u8 EventKind, text; sticky
	msgBye      = 8 // rank → coord: empty; orderly close
	msgFailing  = 9 // rank → coord: text; this rank fails because of another (informational)
)

var errFrame = errors.New("bootstrap: malformed frame")

// writeFrame sends typ and body as one frame with one Write, so that frames
// written under a per-connection mutex never interleave.
func writeFrame(w io.Writer, typ byte, body ...[]byte) error {
	n := 1
	for _, b := range body {
		n += len(b)
	}
	if n > maxFrame {
		return fmt.Errorf("bootstrap: frame of %d bytes exceeds the %d-byte limit", n, maxFrame)
	}
	buf := make([]byte, 0, 4+n)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(n))
	buf = append(buf, typ)
	for _, b := range body {
		buf = append(buf, b...)
	}
	_, err := w.Write(buf)
	return err
}

// readFrame reads one frame of at most limit bytes.
func readFrame(r *bufio.Reader, limit int) (typ byte, body []byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n < 1 || int64(n) > int64(limit) {
		return 0, nil, fmt.Errorf("%w: length %d", errFrame, n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return buf[0], buf[1:], nil
}

func encodeHello(size int) []byte {
	b := binary.LittleEndian.AppendUint16(nil, protoVersion)
	return binary.LittleEndian.AppendUint32(b, uint32(size))
}

func decodeHello(b []byte) (version uint16, size int, err error) {
	if len(b) != 6 {
		return 0, 0, fmt.Errorf("%w: hello of %d bytes", errFrame, len(b))
	}
	return binary.LittleEndian.Uint16(b), int(binary.LittleEndian.Uint32(b[2:])), nil
}

func encodeSeq(seq uint64) []byte { return binary.LittleEndian.AppendUint64(nil, seq) }

func decodeExchange(b []byte) (seq uint64, data []byte, err error) {
	if len(b) < 8 {
		return 0, nil, fmt.Errorf("%w: exchange of %d bytes", errFrame, len(b))
	}
	return binary.LittleEndian.Uint64(b), b[8:], nil
}

// encodeResult builds the body of a msgResult. Every rank gets the same
// bytes, so the coordinator encodes a round once.
func encodeResult(seq uint64, parts [][]byte) ([]byte, error) {
	n := 8 + 4
	for _, p := range parts {
		n += 4 + len(p)
	}
	if n+1 > maxFrame {
		return nil, fmt.Errorf("exchange %d gathers %d bytes, more than the %d-byte frame limit", seq, n, maxFrame)
	}
	b := make([]byte, 0, n)
	b = binary.LittleEndian.AppendUint64(b, seq)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(parts)))
	for _, p := range parts {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b, nil
}

func decodeResult(b []byte, size int) (seq uint64, parts [][]byte, err error) {
	if len(b) < 12 {
		return 0, nil, fmt.Errorf("%w: result of %d bytes", errFrame, len(b))
	}
	seq = binary.LittleEndian.Uint64(b)
	n := int(binary.LittleEndian.Uint32(b[8:]))
	if n != size {
		return 0, nil, fmt.Errorf("%w: result for %d ranks, job has %d", errFrame, n, size)
	}
	b = b[12:]
	parts = make([][]byte, n)
	for i := range parts {
		if len(b) < 4 {
			return 0, nil, fmt.Errorf("%w: result truncated at rank %d", errFrame, i)
		}
		l := int(binary.LittleEndian.Uint32(b))
		b = b[4:]
		if l > len(b) {
			return 0, nil, fmt.Errorf("%w: result truncated at rank %d", errFrame, i)
		}
		// Full slice expression: a caller appending to one rank's data
		// must not overwrite the next rank's.
		parts[i] = b[:l:l]
		b = b[l:]
	}
	if len(b) != 0 {
		return 0, nil, fmt.Errorf("%w: %d trailing bytes in result", errFrame, len(b))
	}
	return seq, parts, nil
}

func encodeFail(rank int, kind EventKind, msg string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(rank))
	b = append(b, byte(kind))
	return append(b, truncate(msg)...)
}

func decodeFail(b []byte) (*RankError, error) {
	if len(b) < 5 {
		return nil, fmt.Errorf("%w: fail of %d bytes", errFrame, len(b))
	}
	return &RankError{Rank: int(binary.LittleEndian.Uint32(b)), Kind: EventKind(b[4]), Msg: string(b[5:])}, nil
}

func truncate(s string) string {
	if len(s) > maxText {
		return s[:maxText]
	}
	return s
}
