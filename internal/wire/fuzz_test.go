package wire

import (
	"bytes"
	"testing"
)

// FuzzDecode: Decode never panics on any input, and what it accepts it
// reads exactly: encoding the decoded header gives back the first
// HeaderSize input bytes. The seed corpus in testdata/fuzz/FuzzDecode holds
// a valid header of each kind and each kind of rejection.
func FuzzDecode(f *testing.F) {
	for _, k := range []Kind{KindEager, KindRTS, KindCTS, KindData, KindAbort, KindAM, KindBye} {
		f.Add(valid(k))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Decode(b)
		if err != nil {
			return
		}
		if len(b) < HeaderSize {
			t.Fatalf("Decode accepted %d bytes", len(b))
		}
		if h.Len > MaxPayload || !h.Kind.valid() {
			t.Fatalf("Decode accepted %+v", h)
		}
		var out [HeaderSize]byte
		h.Encode(out[:])
		if !bytes.Equal(out[:], b[:HeaderSize]) {
			t.Fatalf("Encode(Decode(b)) = %x, want %x", out, b[:HeaderSize])
		}
	})
}
