package shmring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/transport/transporttest"
	"github.com/gorun-hpc/gorun/internal/wire"
)

func makePair(cfg Config) transporttest.MakePair {
	return func(t *testing.T, h0, h1 transport.Handler) (transport.Endpoint, transport.Endpoint, func()) {
		t0, t1, e0, e1 := pair(t, cfg, h0, h1)
		t.Cleanup(func() {
			t0.Close()
			t1.Close()
		})
		return e0, e1, func() { t1.Close() }
	}
}

func TestConformance(t *testing.T) {
	transporttest.Run(t, makePair(Config{}))
}

// TestConformancePolled runs the suite while callers poll both sides
// (transport.Poller) in bursts, as waiting runtime calls do.
func TestConformancePolled(t *testing.T) {
	transporttest.Run(t, func(t *testing.T, h0, h1 transport.Handler) (transport.Endpoint, transport.Endpoint, func()) {
		t0, t1, e0, e1 := pair(t, Config{RingSize: 8192}, h0, h1)
		stop := make(chan struct{})
		p0 := transporttest.Poll(t0, 2, 1, stop)
		p1 := transporttest.Poll(t1, 2, 2, stop)
		t.Cleanup(func() {
			close(stop)
			<-p0
			<-p1
			t0.Close()
			t1.Close()
		})
		return e0, e1, func() { t1.Close() }
	})
}

func TestPoller(t *testing.T) {
	for _, size := range []int{4096, DefaultRingSize} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			transporttest.RunPoller(t, func(t *testing.T, h0, h1 transport.Handler) (transport.Endpoint, transport.Endpoint, transport.Poller) {
				t0, t1, e0, e1 := pair(t, Config{RingSize: size}, h0, h1)
				t.Cleanup(func() {
					t0.Close()
					t1.Close()
				})
				return e0, e1, t1
			})
		})
	}
}

func TestConformanceSmallRingSpin(t *testing.T) {
	transporttest.Run(t, makePair(Config{RingSize: 4096, Spin: func() bool { return true }}))
}

// TestManyFramesOneWay checks order and content through a small ring with
// both Body methods and unread bodies.
func TestManyFramesOneWay(t *testing.T) {
	const frames = 2000
	src := make([]byte, 20000)
	for i := range src {
		src[i] = byte(i * 7)
	}
	var next int
	errc := make(chan error, 1)
	done := make(chan struct{})
	h1 := &funcHandler{frame: func(from int, h wire.Header, b transport.Body) error {
		n := int(h.Tag)
		if n != next || b.Len() != n*10%len(src) {
			errc <- fmt.Errorf("frame %d len %d, want %d len %d", n, b.Len(), next, n*10%len(src))
			return errors.New("bad")
		}
		next++
		var p []byte
		switch n % 3 {
		case 0:
			p, _ = b.Bytes()
		case 1:
			p = make([]byte, b.Len())
			if err := b.ReadInto(p); err != nil {
				errc <- err
				return err
			}
		}
		if p != nil && !bytes.Equal(p, src[:b.Len()]) {
			errc <- fmt.Errorf("frame %d: payload differs", n)
		}
		if next == frames {
			close(done)
		}
		return nil
	}}
	h0 := &funcHandler{frame: func(int, wire.Header, transport.Body) error { return nil }}
	t0, t1, e0, e1 := pair(t, Config{RingSize: 4096}, h0, h1)
	defer t1.Close()
	defer t0.Close()
	for i := range frames {
		if err := e0.Send(wire.Header{Kind: wire.KindEager, Tag: int32(i)}, src[:i*10%len(src)]); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("timeout")
	}
	closeBoth(e0, e1)
}

// TestFastBoxOrder: a stream that mixes fast-box frames (payload up to
// fastMax) with ring frames keeps its order and bytes, also when the fast
// box is full (small frames then go by the ring) and the ring is small
// enough that frames are written in pieces.
func TestFastBoxOrder(t *testing.T) {
	const frames = 200000
	rng := rand.New(rand.NewPCG(11, 12))
	sizes := make([]int, frames)
	const held = 100 // the first frames are small and wait for the consumer
	for i := range sizes {
		switch k := rng.IntN(10); {
		case i < held || k < 7:
			sizes[i] = rng.IntN(fastMax + 1)
		case k < 9:
			sizes[i] = fastMax + 1 + rng.IntN(200)
		default:
			sizes[i] = rng.IntN(10000)
		}
	}
	src := make([]byte, 20000)
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	next := 0
	bad := make(chan string, 1)
	all := make(chan struct{})
	// The consumer takes nothing until the first held frames were sent:
	// more than the fast box holds, fewer than box and ring together, so
	// some of them must go by the ring.
	release := make(chan struct{})
	h1 := &funcHandler{frame: func(from int, h wire.Header, b transport.Body) error {
		i := next
		next++
		if i == 0 {
			<-release
		}
		p := make([]byte, b.Len())
		err := b.ReadInto(p)
		if i >= frames || h.Tag != int32(i) || err != nil || len(p) != sizes[i] || crc32.ChecksumIEEE(p) != uint32(h.Arg0) {
			select {
			case bad <- fmt.Sprintf("frame %d: tag %d, %d bytes (want %d), err %v", i, h.Tag, len(p), sizes[i], err):
			default:
			}
			return errors.New("bad frame")
		}
		if i == frames-1 {
			close(all)
		}
		return nil
	}}
	t0, t1, e0, _ := pair(t, Config{RingSize: 4096}, &funcHandler{frame: func(int, wire.Header, transport.Body) error { return nil }}, h1)
	defer t0.Close()
	defer t1.Close()
	go func() {
		defer func() {
			select {
			case <-release:
			default:
				close(release)
			}
		}()
		for i, n := range sizes {
			if i == held {
				close(release)
			}
			off := (i * 7) % 10000
			pl := src[off : off+n]
			if err := e0.Send(wire.Header{Kind: wire.KindEager, Tag: int32(i), Arg0: uint64(crc32.ChecksumIEEE(pl))}, pl); err != nil {
				select {
				case bad <- fmt.Sprintf("send %d: %v", i, err):
				default:
				}
				return
			}
		}
	}()
	select {
	case <-all:
	case msg := <-bad:
		t.Fatal(msg)
	case <-time.After(2 * time.Minute):
		t.Fatalf("only %d of %d frames arrived", next, frames)
	}
	small := 0
	for _, n := range sizes {
		if n <= fastMax {
			small++
		}
	}
	ep := e0.(*transport.Peer[*channel]).Live().(*endpoint)
	ep.wmu.Lock()
	fast := ep.fastN
	ep.wmu.Unlock()
	if fast == 0 || fast >= uint64(small) {
		t.Errorf("%d of %d small frames went by the fast box; the test wants some to fall back to the ring", fast, small)
	}
}

// world is a transporttest.MakeWorld over shared memory.
func world(t *testing.T, hs []transport.Handler, stand map[int]string) transporttest.World {
	n := len(hs)
	job := newJobID()
	ts := make([]*Transport, n)
	w := transporttest.World{Eps: make([][]transport.Endpoint, n), Addrs: make([]string, n)}
	for i := range n {
		if a, ok := stand[i]; ok {
			w.Addrs[i] = a
			continue
		}
		tr, err := Listen(Config{JobID: job, Secret: testSecret, Self: i, RingSize: 4096})
		if err != nil {
			t.Fatal(err)
		}
		ts[i] = tr
		w.Addrs[i] = tr.Addr()
		t.Cleanup(func() { tr.Close() })
	}
	for i, tr := range ts {
		if tr == nil {
			continue
		}
		eps, err := tr.Connect(context.Background(), w.Addrs, hs[i])
		if err != nil {
			t.Fatal(err)
		}
		w.Eps[i] = eps
	}
	w.Close = func(i int) { ts[i].Close() }
	return w
}

func TestLazy(t *testing.T) { transporttest.RunLazy(t, "unix", world) }
