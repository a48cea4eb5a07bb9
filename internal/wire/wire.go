// Package wire defines the frame header that every transport carries between
// two ranks, and its encoding. The layout is documented in docs/wire.md.
//
// A frame is a fixed 40-byte header followed by Len bytes of payload. The
// header is little-endian. Transports move frames in order and do not look
// inside them beyond Len and the transport-reserved kinds; the meaning of the
// other fields belongs to the runtime (tags, contexts, protocols).
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Version is the protocol version carried in every header. A peer with
// another version is refused at the first frame. Version 2 gave the word at
// offset 20 to Call and added the kinds Closing, Credit and Check; version
// 3 put the element type code of point-to-point messages in Call.
const Version = 3

// HeaderSize is the encoded size of a Header in bytes.
const HeaderSize = 40

// MaxPayload is the largest payload one frame may carry. Larger messages are
// split into several frames by the runtime (rendezvous data chunks).
const MaxPayload = 1 << 30

// Kind says what a frame is. Kinds below KindTransport belong to the layers
// above the transport; kinds from KindTransport up are the transport's own.
type Kind uint8

// Frame kinds.
const (
	KindInvalid Kind = iota
	KindEager        // point-to-point message with its data: Context, Src, Tag; payload = data
	KindRTS          // rendezvous request to send: Context, Src, Tag; Arg0 = sender request, Arg1 = total bytes
	KindCTS          // rendezvous clear to send: Arg0 = sender request, Arg1 = receiver request; FlagDecline
	KindData         // rendezvous data chunk: Arg0 = receiver request, Arg1 = byte offset
	KindAbort        // the sender's job is aborting: payload = cause text
	KindAM           // active message for a layer above p2p (RMA, later): Context names the service
	KindClosing      // the sender entered Close of its world: no new message follows but its Close barrier
	KindCredit       // the receiver consumed Arg0 bytes of the sender's eager messages (flow control)
	KindCheck        // a stalled collective's call: Context, Src, Tag = sequence number, Call; FlagArrival

	// KindTransport and above are reserved for transports.
	KindTransport Kind = 0xF0
	KindBye       Kind = 0xFF // orderly close: the peer will send nothing more
)

// Flags.
const (
	FlagDecline uint8 = 1 << 0 // on KindCTS: the receiver will not take the data (truncation)
	// FlagCMA on KindRTS: the payload is the 8-byte address of the data in
	// the sender, which the receiver (on the same node) may copy itself;
	// on KindCTS: the receiver did, and no Data frame follows.
	FlagCMA uint8 = 1 << 1
	// FlagPoison on KindEager: in place of a collective's data, the
	// payload is the error that stopped the call on some rank.
	FlagPoison uint8 = 1 << 2
	// FlagGone on KindCTS with FlagDecline: the receiver entered Close and
	// will never receive the message.
	FlagGone uint8 = 1 << 3
	// FlagArrival on KindCheck: the sender waits in a shared-memory
	// arrival, which compares the calls itself; answer only whether the
	// communicator was closed.
	FlagArrival uint8 = 1 << 4
)

func (k Kind) String() string {
	switch k {
	case KindEager:
		return "eager"
	case KindRTS:
		return "rts"
	case KindCTS:
		return "cts"
	case KindData:
		return "data"
	case KindAbort:
		return "abort"
	case KindAM:
		return "am"
	case KindClosing:
		return "closing"
	case KindCredit:
		return "credit"
	case KindCheck:
		return "check"
	case KindBye:
		return "bye"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

func (k Kind) valid() bool {
	return (k >= KindEager && k <= KindCheck) || k == KindBye
}

// Header is one frame header.
type Header struct {
	Kind    Kind
	Flags   uint8
	Len     uint32 // payload bytes that follow the header
	Context uint32 // communicator context id
	Src     int32  // sender's rank in that communicator
	Tag     int32
	Call    uint32 // the collective call a frame belongs to, or a point-to-point message's element type code (runtime-defined)
	Arg0    uint64
	Arg1    uint64
}

// ErrHeader is returned for a header that cannot be decoded.
var ErrHeader = errors.New("wire: bad frame header")

// Encode writes h into b[:HeaderSize]. It panics if b is shorter, which is a
// programming error.
func (h *Header) Encode(b []byte) {
	_ = b[HeaderSize-1]
	b[0] = Version
	b[1] = byte(h.Kind)
	b[2] = h.Flags
	b[3] = 0
	binary.LittleEndian.PutUint32(b[4:], h.Len)
	binary.LittleEndian.PutUint32(b[8:], h.Context)
	binary.LittleEndian.PutUint32(b[12:], uint32(h.Src))
	binary.LittleEndian.PutUint32(b[16:], uint32(h.Tag))
	binary.LittleEndian.PutUint32(b[20:], h.Call)
	binary.LittleEndian.PutUint64(b[24:], h.Arg0)
	binary.LittleEndian.PutUint64(b[32:], h.Arg1)
}

// Decode reads a header from b. It checks the version, the kind, the reserved
// bytes and the payload length, and returns an error wrapping ErrHeader for
// anything else, so a stranger's bytes are refused rather than trusted.
func Decode(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, fmt.Errorf("%w: %d bytes, want %d", ErrHeader, len(b), HeaderSize)
	}
	if b[0] != Version {
		return h, fmt.Errorf("%w: version %d, want %d", ErrHeader, b[0], Version)
	}
	h.Kind = Kind(b[1])
	if !h.Kind.valid() {
		return h, fmt.Errorf("%w: unknown kind %d", ErrHeader, b[1])
	}
	if b[3] != 0 {
		return h, fmt.Errorf("%w: reserved bytes set", ErrHeader)
	}
	h.Flags = b[2]
	h.Len = binary.LittleEndian.Uint32(b[4:])
	if h.Len > MaxPayload {
		return h, fmt.Errorf("%w: payload %d bytes exceeds %d", ErrHeader, h.Len, MaxPayload)
	}
	h.Context = binary.LittleEndian.Uint32(b[8:])
	h.Src = int32(binary.LittleEndian.Uint32(b[12:]))
	h.Tag = int32(binary.LittleEndian.Uint32(b[16:]))
	h.Call = binary.LittleEndian.Uint32(b[20:])
	h.Arg0 = binary.LittleEndian.Uint64(b[24:])
	h.Arg1 = binary.LittleEndian.Uint64(b[32:])
	return h, nil
}
