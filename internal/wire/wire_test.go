package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// valid returns the encoding of a header with every field set.
func valid(k Kind) []byte {
	h := Header{Kind: k, Flags: FlagDecline, Len: 1234, Context: 0xdeadbeef, Src: -3, Tag: 1 << 30, Call: 0x8000_0001, Arg0: ^uint64(0), Arg1: 42}
	b := make([]byte, HeaderSize)
	h.Encode(b)
	return b
}

func TestRoundTrip(t *testing.T) {
	headers := []Header{
		{Kind: KindEager},
		{Kind: KindEager, Len: MaxPayload, Context: 1, Src: 2, Tag: 3, Arg0: 4, Arg1: 5},
		{Kind: KindRTS, Src: -1, Tag: -2147483648, Arg0: 7, Arg1: 1 << 40},
		{Kind: KindCTS, Flags: FlagDecline, Arg0: ^uint64(0), Arg1: ^uint64(0) - 1},
		{Kind: KindData, Len: 1 << 20, Arg0: 9, Arg1: 1 << 33},
		{Kind: KindAbort, Len: 17},
		{Kind: KindAM, Flags: 0xff, Context: 0xffffffff, Src: 2147483647, Tag: 2147483647},
		{Kind: KindClosing},
		{Kind: KindCredit, Arg0: 1 << 20},
		{Kind: KindCheck, Context: 3, Src: 1, Tag: 9, Call: 0xffffffff, Arg0: 8, Arg1: 4},
		{Kind: KindEager, Flags: FlagPoison, Context: 3, Call: 0x1234},
		{Kind: KindBye},
	}
	for _, h := range headers {
		b := make([]byte, HeaderSize+3) // longer input: Decode reads the first HeaderSize bytes
		h.Encode(b)
		got, err := Decode(b)
		if err != nil {
			t.Errorf("Decode(Encode(%+v)): %v", h, err)
			continue
		}
		if got != h {
			t.Errorf("Decode(Encode(%+v)) = %+v", h, got)
		}
		again := make([]byte, HeaderSize)
		got.Encode(again)
		if !bytes.Equal(again, b[:HeaderSize]) {
			t.Errorf("Encode(Decode(b)) = %x, want %x", again, b[:HeaderSize])
		}
	}
}

// TestLayout pins the byte layout documented in docs/wire.md.
func TestLayout(t *testing.T) {
	h := Header{Kind: KindRTS, Flags: 0x5a, Len: 0x04030201, Context: 0x08070605, Src: 0x0c0b0a09, Tag: 0x100f0e0d,
		Call: 0x14131211, Arg0: 0x1f1e1d1c1b1a1918, Arg1: 0x2726252423222120}
	var b [HeaderSize]byte
	h.Encode(b[:])
	want := []byte{
		Version, byte(KindRTS), 0x5a, 0, // version, kind, flags, reserved
		1, 2, 3, 4, // len
		5, 6, 7, 8, // context
		9, 10, 11, 12, // src
		13, 14, 15, 16, // tag
		0x11, 0x12, 0x13, 0x14, // call
		0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, // arg0
		0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, // arg1
	}
	if !bytes.Equal(b[:], want) {
		t.Errorf("layout:\n got %x\nwant %x", b[:], want)
	}
}

func TestEncodeShortBufferPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Encode into a short buffer did not panic")
		}
	}()
	var h Header
	h.Encode(make([]byte, HeaderSize-1))
}

func TestDecodeRejects(t *testing.T) {
	mod := func(f func(b []byte)) []byte {
		b := valid(KindEager)
		f(b)
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		msg  string
	}{
		{"empty", nil, "0 bytes"},
		{"truncated", valid(KindEager)[:HeaderSize-1], "39 bytes"},
		{"version 0", mod(func(b []byte) { b[0] = 0 }), "version 0"},
		{"version 1", mod(func(b []byte) { b[0] = 1 }), "version 1"},
		{"version 2", mod(func(b []byte) { b[0] = 2 }), "version 2"},
		{"version 4", mod(func(b []byte) { b[0] = 4 }), "version 4"},
		{"kind invalid", mod(func(b []byte) { b[1] = byte(KindInvalid) }), "unknown kind 0"},
		{"kind after check", mod(func(b []byte) { b[1] = byte(KindCheck) + 1 }), "unknown kind 10"},
		{"kind transport", mod(func(b []byte) { b[1] = byte(KindTransport) }), "unknown kind 240"},
		{"reserved byte 3", mod(func(b []byte) { b[3] = 1 }), "reserved"},
		{"len over max", mod(func(b []byte) { binary.LittleEndian.PutUint32(b[4:], MaxPayload+1) }), "exceeds"},
		{"len all ones", mod(func(b []byte) { binary.LittleEndian.PutUint32(b[4:], ^uint32(0)) }), "exceeds"},
	} {
		_, err := Decode(tc.b)
		if !errors.Is(err, ErrHeader) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: Decode = %v, want ErrHeader mentioning %q", tc.name, err, tc.msg)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindEager: "eager", KindRTS: "rts", KindCTS: "cts", KindData: "data",
		KindAbort: "abort", KindAM: "am", KindClosing: "closing", KindCredit: "credit", KindCheck: "check", KindBye: "bye", KindInvalid: "kind(0)", 0xf3: "kind(243)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}
