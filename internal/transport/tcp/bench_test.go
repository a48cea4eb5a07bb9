package tcp

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// Benchmarks over loopback, both ranks in this process. Run with
//
//	go test -run '^$' -bench . -count 3 ./internal/transport/tcp/
//
// Ping-pong ns/op is one round trip; the us/hop metric is half of it, the
// number the MPI benchmarks in /work/shared/bench report.

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

var spinModes = []struct {
	name string
	spin func() bool
}{{"park", nil}, {"spin", spinAlways}}

// benchPair connects ranks 0 and 1 with the given handlers.
func benchPair(b *testing.B, spin func() bool, h0, h1 transport.Handler) (e01, e10 transport.Endpoint) {
	b.Helper()
	ts := make([]*Transport, 2)
	for i := range ts {
		tr, err := Listen(Config{Secret: testSecret, Self: i, Spin: spin})
		if err != nil {
			b.Fatal(err)
		}
		ts[i] = tr
		b.Cleanup(func() { tr.Close() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs := addrsOf(ts)
	var eps1 []transport.Endpoint
	var err1 error
	c1 := goDone(func() { eps1, err1 = ts[1].Connect(ctx, addrs, h1) })
	eps0, err0 := ts[0].Connect(ctx, addrs, h0)
	<-c1
	if err0 != nil || err1 != nil {
		b.Fatal(err0, err1)
	}
	b.Cleanup(func() {
		c := goDone(func() { eps1[0].Close() })
		eps0[1].Close()
		<-c
	})
	return eps0[1], eps1[0]
}

// echo answers every frame with the same frame, from the receive goroutine,
// as a polling MPI progress engine would.
type echo struct {
	e   atomic.Pointer[transport.Endpoint]
	buf []byte
}

func (h *echo) HandleFrame(from int, hd wire.Header, b transport.Body) error {
	p := h.buf[:b.Len()]
	if err := b.ReadInto(p); err != nil {
		return err
	}
	return (*h.e.Load()).Send(hd, p)
}
func (h *echo) PeerLost(from int, err error) {}

// pinger sends the next ping from its handler until it has n answers.
type pinger struct {
	e    atomic.Pointer[transport.Endpoint]
	buf  []byte
	n, i int
	done chan struct{}
	wake chan struct{} // if non-nil, hand each answer to the benchmark goroutine instead
}

func (h *pinger) HandleFrame(from int, hd wire.Header, b transport.Body) error {
	if err := b.ReadInto(h.buf[:b.Len()]); err != nil {
		return err
	}
	if h.wake != nil {
		h.wake <- struct{}{}
		return nil
	}
	if h.i++; h.i == h.n {
		close(h.done)
		return nil
	}
	return (*h.e.Load()).Send(hd, h.buf[:b.Len()])
}
func (h *pinger) PeerLost(from int, err error) {}

func reportHop(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2/1e3, "us/hop")
}

// BenchmarkPingPong: round trips of one frame, both ends answering from
// their receive goroutines.
func BenchmarkPingPong(b *testing.B) {
	for _, m := range spinModes {
		for _, size := range []int{8, 1 << 10} {
			b.Run(m.name+"/"+sizeName(size), func(b *testing.B) {
				ping := &pinger{buf: make([]byte, size), n: b.N, done: make(chan struct{})}
				pong := &echo{buf: make([]byte, size)}
				e0, e1 := benchPair(b, m.spin, ping, pong)
				ping.e.Store(&e0)
				pong.e.Store(&e1)
				b.SetBytes(int64(2 * size))
				b.ReportAllocs()
				b.ResetTimer()
				if err := e0.Send(wire.Header{Kind: wire.KindEager}, ping.buf); err != nil {
					b.Fatal(err)
				}
				<-ping.done
				b.StopTimer()
				reportHop(b)
			})
		}
	}
}

// BenchmarkPingPongWake: as PingPong, but each answer is handed to a
// waiting application goroutine over a channel, which sends the next ping:
// the cost of a goroutine wake-up on top of the transport.
func BenchmarkPingPongWake(b *testing.B) {
	for _, m := range spinModes {
		for _, size := range []int{8, 1 << 10} {
			b.Run(m.name+"/"+sizeName(size), func(b *testing.B) {
				ping := &pinger{buf: make([]byte, size), wake: make(chan struct{}, 1)}
				pong := &echo{buf: make([]byte, size)}
				e0, e1 := benchPair(b, m.spin, ping, pong)
				pong.e.Store(&e1)
				out := make([]byte, size)
				b.SetBytes(int64(2 * size))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if err := e0.Send(wire.Header{Kind: wire.KindEager}, out); err != nil {
						b.Fatal(err)
					}
					<-ping.wake
				}
				b.StopTimer()
				reportHop(b)
			})
		}
	}
}

// sink reads every frame into its buffer with ReadInto and acknowledges the
// n-th.
type sink struct {
	e    atomic.Pointer[transport.Endpoint]
	dst  []byte
	n, i int
}

func (h *sink) HandleFrame(from int, hd wire.Header, b transport.Body) error {
	if err := b.ReadInto(h.dst[:b.Len()]); err != nil {
		return err
	}
	if h.i++; h.i == h.n {
		return (*h.e.Load()).Send(wire.Header{Kind: wire.KindEager}, nil)
	}
	return nil
}
func (h *sink) PeerLost(from int, err error) {}

type signal chan struct{}

func (s signal) HandleFrame(int, wire.Header, transport.Body) error { s <- struct{}{}; return nil }
func (s signal) PeerLost(int, error)                                {}

// BenchmarkStream: one-way bandwidth, the receiver reading each payload
// into its own buffer with ReadInto.
func BenchmarkStream(b *testing.B) {
	for _, m := range spinModes {
		for _, size := range []int{64 << 10, 1 << 20, 16 << 20} {
			b.Run(m.name+"/"+sizeName(size), func(b *testing.B) {
				ack := make(signal, 1)
				s := &sink{dst: make([]byte, size), n: b.N}
				e0, e1 := benchPair(b, m.spin, ack, s)
				s.e.Store(&e1)
				src := make([]byte, size)
				for i := range src {
					src[i] = byte(i)
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if err := e0.Send(wire.Header{Kind: wire.KindData}, src); err != nil {
						b.Fatal(err)
					}
				}
				<-ack
			})
		}
	}
}

// The comparison: the same ping-pong and 1 MiB stream (40-byte header plus
// payload, echoed or swallowed by a goroutine) over a plain net.Conn and
// over one yamux stream on a loopback connection, with yamux's default
// window and with a 16 MiB one.

func loopbackConns(b *testing.B) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var srv net.Conn
	var aerr error
	accepted := goDone(func() { srv, aerr = ln.Accept() })
	cli, err := net.Dial("tcp", ln.Addr().String())
	<-accepted
	if err != nil || aerr != nil {
		b.Fatal(err, aerr)
	}
	b.Cleanup(func() { cli.Close(); srv.Close() })
	return cli, srv
}

func yamuxStreams(b *testing.B, window uint32) (io.ReadWriteCloser, io.ReadWriteCloser) {
	c1, c2 := loopbackConns(b)
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	if window > 0 {
		cfg.MaxStreamWindowSize = window
	}
	cs, err := yamux.Client(c1, cfg)
	if err != nil {
		b.Fatal(err)
	}
	ss, err := yamux.Server(c2, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close(); ss.Close() })
	var srv net.Conn
	var aerr error
	accepted := goDone(func() { srv, aerr = ss.Accept() })
	cli, err := cs.Open()
	if err != nil {
		b.Fatal(err)
	}
	// yamux announces a stream with its first write.
	if _, err := cli.Write(make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	<-accepted
	if aerr != nil {
		b.Fatal(aerr)
	}
	if _, err := io.ReadFull(srv, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	return cli, srv
}

func benchStreamPingPong(b *testing.B, cli, srv io.ReadWriter, size int) {
	go func() {
		buf := make([]byte, wire.HeaderSize+size)
		for {
			if _, err := io.ReadFull(srv, buf); err != nil {
				return
			}
			if _, err := srv.Write(buf); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, wire.HeaderSize+size)
	b.SetBytes(int64(2 * size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := cli.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(cli, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportHop(b)
}

func benchStreamBandwidth(b *testing.B, cli, srv io.ReadWriter, size int) {
	go func() {
		var hdr [wire.HeaderSize]byte
		dst := make([]byte, size)
		for {
			if _, err := io.ReadFull(srv, hdr[:]); err != nil {
				return
			}
			n := binary.LittleEndian.Uint32(hdr[4:])
			if n == 0 {
				srv.Write(hdr[:1])
				continue
			}
			if _, err := io.ReadFull(srv, dst[:n]); err != nil {
				return
			}
		}
	}()
	var hdr, end [wire.HeaderSize]byte
	h := wire.Header{Kind: wire.KindData, Len: uint32(size)}
	h.Encode(hdr[:])
	(&wire.Header{Kind: wire.KindData}).Encode(end[:])
	src := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := cli.Write(hdr[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := cli.Write(src); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := cli.Write(end[:]); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(cli, end[:1]); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkCompare(b *testing.B) {
	type mk func(b *testing.B) (io.ReadWriter, io.ReadWriter)
	for _, c := range []struct {
		name string
		mk   mk
	}{
		{"netconn", func(b *testing.B) (io.ReadWriter, io.ReadWriter) { return loopbackConns(b) }},
		{"yamux", func(b *testing.B) (io.ReadWriter, io.ReadWriter) { return yamuxStreams(b, 0) }},
		{"yamux-window16MiB", func(b *testing.B) (io.ReadWriter, io.ReadWriter) { return yamuxStreams(b, 16<<20) }},
	} {
		for _, size := range []int{8, 1 << 10} {
			b.Run(c.name+"/pingpong/"+sizeName(size), func(b *testing.B) {
				cli, srv := c.mk(b)
				benchStreamPingPong(b, cli, srv, size)
			})
		}
		b.Run(c.name+"/stream/1MiB", func(b *testing.B) {
			cli, srv := c.mk(b)
			benchStreamBandwidth(b, cli, srv, 1<<20)
		})
	}
}
