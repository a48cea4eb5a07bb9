package transporttest

import (
	"bytes"
	"hash/crc32"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// testHeaders: every header field of every non-transport kind arrives as
// sent, including extreme values; Send sets Len itself.
func testHeaders(t *testing.T, mk MakePair) {
	r := newRig(t)
	var sent []wire.Header
	for k := wire.KindEager; k <= wire.KindAM; k++ {
		sent = append(sent,
			wire.Header{Kind: k, Flags: 0xff, Context: 0xffffffff, Src: -1, Tag: -2147483648, Arg0: ^uint64(0), Arg1: 1 << 63},
			wire.Header{Kind: k, Flags: wire.FlagDecline, Context: 3, Src: 2147483647, Tag: 12, Arg0: 1, Arg1: 2})
	}
	all := make(chan struct{})
	i := 0
	r.h1.frame = func(from int, h wire.Header, b transport.Body) error {
		want := sent[i]
		want.Len = uint32(i)
		if from != 0 || h != want || b.Len() != i {
			r.errorf("frame %d from %d: got %+v (body %d), want %+v", i, from, h, b.Len(), want)
		}
		if i++; i == len(sent) {
			close(all)
		}
		return nil
	}
	r.start(mk)
	payload := make([]byte, len(sent))
	r.do("the sender", func() {
		for i, h := range sent {
			h.Len = 0xdeadbeef // Send must set it
			if !r.send(r.e0, h, payload[:i]) {
				return
			}
		}
	})
	r.wait(all, "all headers")
}

// testOrder: 10k frames of random sizes up to 64 KiB arrive in order and
// intact; a third are read with ReadInto, a third with Bytes, and a third
// left for the transport to skip.
func testOrder(t *testing.T, mk MakePair) {
	const frames = 10000
	const maxSize = 64 << 10
	src := randomBytes(1, 2*maxSize)
	type plan struct{ off, size int }
	plans := make([]plan, frames)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range plans {
		size := rng.IntN(maxSize + 1)
		switch {
		case i%50 == 0:
			size = 0
		case i%97 == 0:
			size = maxSize
		case i%5 == 0:
			size = rng.IntN(100) // many small frames share a read
		}
		plans[i] = plan{rng.IntN(maxSize), size}
	}

	r := newRig(t)
	all := make(chan struct{})
	dst := make([]byte, maxSize)
	next := 0
	r.h1.frame = func(from int, h wire.Header, b transport.Body) error {
		i := next
		next++
		if i >= frames {
			r.errorf("extra frame %d", i)
			return nil
		}
		p := plans[i]
		if from != 0 || h.Kind != wire.KindEager || h.Tag != int32(i) || h.Context != 7 ||
			int(h.Len) != p.size || b.Len() != p.size || h.Arg0 != uint64(p.off) {
			r.errorf("frame %d: from %d header %+v body %d, want tag %d len %d off %d", i, from, h, b.Len(), i, p.size, p.off)
			return nil
		}
		var got []byte
		var err error
		switch i % 3 {
		case 0:
			got = dst[:p.size]
			err = b.ReadInto(got)
		case 1:
			got, err = b.Bytes()
		case 2:
			got = src[p.off : p.off+p.size] // not read: the transport skips it
		}
		if err != nil {
			r.errorf("frame %d: reading %d bytes: %v", i, p.size, err)
		} else if len(got) != p.size || crc32.ChecksumIEEE(got) != uint32(h.Arg1) {
			r.errorf("frame %d: payload of %d bytes corrupted", i, p.size)
		}
		if i == frames-1 {
			close(all)
		}
		return nil
	}
	r.start(mk)
	sent := done(func() {
		for i, p := range plans {
			pl := src[p.off : p.off+p.size]
			h := wire.Header{Kind: wire.KindEager, Context: 7, Tag: int32(i), Arg0: uint64(p.off), Arg1: uint64(crc32.ChecksumIEEE(pl))}
			if !r.send(r.e0, h, pl) {
				return
			}
		}
	})
	r.wait(sent, "the sender")
	r.wait(all, "all frames")
}

// testLarge: 16 MiB and 64 MiB frames arrive intact through ReadInto and
// through Bytes, and an unread 16 MiB frame is skipped cleanly.
func testLarge(t *testing.T, mk MakePair) {
	const mib = 1 << 20
	src := randomBytes(2, 64*mib+64<<10)
	type plan struct {
		size int
		how  string
	}
	plans := []plan{{16 * mib, "into"}, {16 * mib, "bytes"}, {16 * mib, "skip"}, {64 * mib, "into"}, {64 * mib, "bytes"}, {1, "into"}}
	r := newRig(t)
	all := make(chan struct{})
	dst := make([]byte, 64*mib)
	next := 0
	r.h1.frame = func(from int, h wire.Header, b transport.Body) error {
		i := next
		next++
		p := plans[i]
		if int(h.Len) != p.size || b.Len() != p.size || h.Tag != int32(i) {
			r.errorf("frame %d: header %+v body %d, want len %d", i, h, b.Len(), p.size)
			return nil
		}
		var got []byte
		var err error
		switch p.how {
		case "into":
			got = dst[:p.size]
			err = b.ReadInto(got)
		case "bytes":
			got, err = b.Bytes()
		case "skip":
			got = src[i*4096 : i*4096+p.size]
		}
		if err != nil {
			r.errorf("frame %d (%s, %d bytes): %v", i, p.how, p.size, err)
		} else if crc32.ChecksumIEEE(got) != uint32(h.Arg1) {
			r.errorf("frame %d (%s, %d bytes): payload corrupted", i, p.how, p.size)
		}
		if i == len(plans)-1 {
			close(all)
		}
		return nil
	}
	r.start(mk)
	sent := done(func() {
		for i, p := range plans {
			pl := src[i*4096 : i*4096+p.size]
			if !r.send(r.e0, wire.Header{Kind: wire.KindData, Tag: int32(i), Arg1: uint64(crc32.ChecksumIEEE(pl))}, pl) {
				return
			}
		}
	})
	r.wait(sent, "the sender")
	r.wait(all, "all frames")
}

// testPayloadReuse: the caller may overwrite the payload as soon as Send
// returns; the receiver sees what was sent.
func testPayloadReuse(t *testing.T, mk MakePair) {
	const frames = 200
	r := newRig(t)
	all := make(chan struct{})
	next := 0
	r.h1.frame = func(from int, h wire.Header, b transport.Body) error {
		i := next
		next++
		p, err := b.Bytes()
		if err != nil {
			r.errorf("frame %d: %v", i, err)
			return nil
		}
		if bytes.Count(p, []byte{byte(i)}) != len(p) {
			r.errorf("frame %d: payload of %d bytes changed after Send returned", i, len(p))
		}
		if i == frames-1 {
			close(all)
		}
		return nil
	}
	r.start(mk)
	buf := make([]byte, 1<<20)
	sent := done(func() {
		for i := range frames {
			n := 100
			if i%10 == 0 {
				n = len(buf)
			}
			p := buf[:n]
			fill(p, byte(i))
			if !r.send(r.e0, wire.Header{Kind: wire.KindEager, Tag: int32(i)}, p) {
				return
			}
			fill(p, 0xee)
		}
	})
	r.wait(sent, "the sender")
	r.wait(all, "all frames")
}

// testConcurrentSenders: 8 goroutines send 1000 frames each on one
// endpoint; each goroutine's frames arrive in its order and never
// interleave with another's.
func testConcurrentSenders(t *testing.T, mk MakePair) {
	const senders, frames = 8, 1000
	r := newRig(t)
	all := make(chan struct{})
	var next [senders]int
	total := 0
	r.h1.frame = func(from int, h wire.Header, b transport.Body) error {
		g := int(h.Tag)
		if g < 0 || g >= senders || h.Arg0 != uint64(next[g]) {
			r.errorf("frame from sender %d: seq %d, want %d", g, h.Arg0, next[min(max(g, 0), senders-1)])
			return nil
		}
		p, err := b.Bytes()
		if err != nil {
			r.errorf("sender %d frame %d: %v", g, h.Arg0, err)
			return nil
		}
		want := byte(g*31 + next[g])
		if len(p) != int(h.Arg1) || (len(p) > 0 && (p[0] != want || p[len(p)-1] != want || bytes.Count(p, []byte{want}) != len(p))) {
			r.errorf("sender %d frame %d: payload of %d bytes interleaved or corrupted", g, h.Arg0, len(p))
		}
		next[g]++
		if total++; total == senders*frames {
			close(all)
		}
		return nil
	}
	r.start(mk)
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			buf := make([]byte, 256<<10)
			for i := range frames {
				n := rng.IntN(4096)
				if i%100 == 0 {
					n = len(buf)
				}
				p := buf[:n]
				fill(p, byte(g*31+i))
				if !r.send(r.e0, wire.Header{Kind: wire.KindEager, Tag: int32(g), Arg0: uint64(i), Arg1: uint64(n)}, p) {
					return
				}
			}
		}()
	}
	r.wait(done(wg.Wait), "the senders")
	r.wait(all, "all frames")
}

// testBothDirections: each side streams 64 MiB to the other at the same
// time. A transport whose receiving depends on its sending deadlocks here.
func testBothDirections(t *testing.T, mk MakePair) {
	const frames, size = 16, 4 << 20
	src := randomBytes(3, size+frames*4096)
	crc := make([]uint32, frames)
	for i := range crc {
		crc[i] = crc32.ChecksumIEEE(src[i*4096 : i*4096+size])
	}
	r := newRig(t)
	recv := func(rank int, all chan struct{}) func(int, wire.Header, transport.Body) error {
		dst := make([]byte, size)
		next := 0
		return func(from int, h wire.Header, b transport.Body) error {
			i := next
			next++
			if from != 1-rank || h.Tag != int32(i) || b.Len() != size {
				r.errorf("rank %d frame %d: from %d tag %d len %d", rank, i, from, h.Tag, b.Len())
				return nil
			}
			if err := b.ReadInto(dst); err != nil {
				r.errorf("rank %d frame %d: %v", rank, i, err)
			} else if crc32.ChecksumIEEE(dst) != crc[i] {
				r.errorf("rank %d frame %d: payload corrupted", rank, i)
			}
			if next == frames {
				close(all)
			}
			return nil
		}
	}
	all0, all1 := make(chan struct{}), make(chan struct{})
	r.h0.frame, r.h1.frame = recv(0, all0), recv(1, all1)
	r.start(mk)
	stream := func(e transport.Endpoint) func() {
		return func() {
			for i := range frames {
				if !r.send(e, wire.Header{Kind: wire.KindData, Tag: int32(i)}, src[i*4096:i*4096+size]) {
					return
				}
			}
		}
	}
	s0, s1 := done(stream(r.e0)), done(stream(r.e1))
	r.wait(s0, "rank 0's sender")
	r.wait(s1, "rank 1's sender")
	r.wait(all0, "rank 0's receiver")
	r.wait(all1, "rank 1's receiver")
}

// testSendFromHandler: a handler may send small frames (the runtime answers
// a rendezvous request from its handler); here rank 1 echoes every frame.
func testSendFromHandler(t *testing.T, mk MakePair) {
	const frames = 2000
	r := newRig(t)
	all := make(chan struct{})
	r.h1.frame = func(from int, h wire.Header, b transport.Body) error {
		p, err := b.Bytes()
		if err != nil {
			r.errorf("echo: %v", err)
			return nil
		}
		if err := r.endpoint(1).Send(h, p); err != nil {
			r.errorf("echo send: %v", err)
		}
		return nil
	}
	next := 0
	r.h0.frame = func(from int, h wire.Header, b transport.Body) error {
		p, err := b.Bytes()
		if err != nil || h.Tag != int32(next) || len(p) != next%512 || (len(p) > 0 && p[0] != byte(next)) {
			r.errorf("echo %d: tag %d, %d bytes, err %v", next, h.Tag, len(p), err)
		}
		if next++; next == frames {
			close(all)
		}
		return nil
	}
	r.start(mk)
	sent := done(func() {
		buf := make([]byte, 512)
		for i := range frames {
			p := buf[:i%512]
			fill(p, byte(i))
			if !r.send(r.e0, wire.Header{Kind: wire.KindEager, Tag: int32(i)}, p) {
				return
			}
		}
	})
	r.wait(sent, "the sender")
	r.wait(all, "all echoes")
}

// testBodyMisuse: ReadInto with a wrong-sized destination fails without
// consuming the payload; Bytes may be called again and ReadInto after it.
func testBodyMisuse(t *testing.T, mk MakePair) {
	r := newRig(t)
	all := make(chan struct{})
	want := randomBytes(4, 100<<10)
	n := 0
	r.h1.frame = func(from int, h wire.Header, b transport.Body) error {
		size := b.Len()
		if err := b.ReadInto(make([]byte, size+1)); err == nil {
			r.errorf("ReadInto with a destination of %d bytes for %d: no error", size+1, size)
		}
		p, err := b.Bytes()
		if err != nil || !bytes.Equal(p, want[:size]) {
			r.errorf("Bytes after a failed ReadInto: %d bytes, %v", len(p), err)
		}
		if p2, err := b.Bytes(); err != nil || !bytes.Equal(p2, want[:size]) {
			r.errorf("second Bytes: %d bytes, %v", len(p2), err)
		}
		dst := make([]byte, size)
		if err := b.ReadInto(dst); err != nil || !bytes.Equal(dst, want[:size]) {
			r.errorf("ReadInto after Bytes: %v", err)
		}
		if n++; n == 2 {
			close(all)
		}
		return nil
	}
	r.start(mk)
	r.do("the sender", func() {
		if r.send(r.e0, wire.Header{Kind: wire.KindEager}, want[:100]) {
			r.send(r.e0, wire.Header{Kind: wire.KindEager}, want)
		}
	})
	r.wait(all, "both frames")
}

// fill sets every byte of p to c. Doubling copies keep it fast under the
// race detector, which instruments a byte loop byte by byte.
func fill(p []byte, c byte) {
	if len(p) == 0 {
		return
	}
	p[0] = c
	for k := 1; k < len(p); k *= 2 {
		copy(p[k:], p[:k])
	}
}
