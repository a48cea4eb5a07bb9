package shmring

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// Benchmarks between two processes: this one is rank 0, a helper process
// ("pingpong") is rank 1. The helper answers every frame with Tag 1 by an
// empty frame (or, with Flags 1, by a frame of the same size), and reads
// frames with Tag 0 into a buffer without answering.

func always() bool { return true }

func helperPingPong() error {
	job := os.Getenv("SHMRING_JOB")
	cfg := Config{JobID: job, Secret: testSecret, Self: 1}
	if os.Getenv("SHMRING_SPIN") == "1" {
		cfg.Spin = always
	}
	tr, err := Listen(cfg)
	if err != nil {
		return err
	}
	defer tr.Close()
	var ep transport.Endpoint
	ready := make(chan struct{})
	bye := make(chan struct{})
	buf := make([]byte, 16<<20)
	h := &funcHandler{
		frame: func(from int, h wire.Header, b transport.Body) error {
			<-ready
			p := buf[:b.Len()]
			if err := b.ReadInto(p); err != nil {
				return err
			}
			if h.Tag == 1 {
				if h.Flags&1 == 0 {
					p = nil
				}
				return ep.Send(wire.Header{Kind: wire.KindEager, Tag: 1}, p)
			}
			if h.Tag == 2 {
				close(bye)
			}
			return nil
		},
		lost: func(int, error) { close(bye) },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eps, err := tr.Connect(ctx, addrsFor(job, 2), h)
	if err == nil {
		err = openAll(ctx, eps)
	}
	if err != nil {
		return err
	}
	ep = eps[0]
	close(ready)
	<-bye
	return ep.Close()
}

// benchPair starts the helper and connects to it.
func benchPair(b *testing.B, spin bool, replies chan struct{}) transport.Endpoint {
	b.Helper()
	job := newJobID()
	cfg := Config{JobID: job, Secret: testSecret, Self: 0}
	s := "0"
	if spin {
		cfg.Spin, s = always, "1"
	}
	tr, err := Listen(cfg)
	if err != nil {
		b.Fatal(err)
	}
	cmd := helperCmd(b, "pingpong", job, 1, "SHMRING_SPIN="+s)
	if err := cmd.Start(); err != nil {
		tr.Close()
		b.Fatal(err)
	}
	h := &funcHandler{frame: func(from int, h wire.Header, body transport.Body) error {
		if _, err := body.Bytes(); err != nil {
			return err
		}
		replies <- struct{}{}
		return nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eps, err := tr.Connect(ctx, addrsFor(job, 2), h)
	if err == nil {
		err = openAll(ctx, eps)
	}
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		tr.Close()
		b.Fatal(err)
	}
	e := eps[1]
	b.Cleanup(func() {
		e.Send(wire.Header{Kind: wire.KindEager, Tag: 2}, nil)
		e.Close()
		cmd.Wait()
		tr.Close()
	})
	return e
}

func spinName(spin bool) string {
	if spin {
		return "spin"
	}
	return "nospin"
}

// BenchmarkPingPong reports half a round trip per op (us/hop).
func BenchmarkPingPong(b *testing.B) {
	for _, size := range []int{8, 1024} {
		for _, spin := range []bool{true, false} {
			b.Run(strconv.Itoa(size)+"B/"+spinName(spin), func(b *testing.B) {
				replies := make(chan struct{}, 1)
				e := benchPair(b, spin, replies)
				p := make([]byte, size)
				h := wire.Header{Kind: wire.KindEager, Tag: 1, Flags: 1}
				b.ReportAllocs()
				b.SetBytes(int64(size))
				b.ResetTimer()
				for range b.N {
					if err := e.Send(h, p); err != nil {
						b.Fatal(err)
					}
					<-replies
				}
				b.StopTimer()
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2000, "us/hop")
			})
		}
	}
}

// BenchmarkStream streams frames one way; the helper answers the last.
func BenchmarkStream(b *testing.B) {
	for _, size := range []int{1 << 20, 16 << 20} {
		for _, spin := range []bool{true, false} {
			b.Run(strconv.Itoa(size>>20)+"MiB/"+spinName(spin), func(b *testing.B) {
				replies := make(chan struct{}, 1)
				e := benchPair(b, spin, replies)
				p := make([]byte, size)
				b.ReportAllocs()
				b.SetBytes(int64(size))
				b.ResetTimer()
				for range b.N {
					if err := e.Send(wire.Header{Kind: wire.KindEager}, p); err != nil {
						b.Fatal(err)
					}
				}
				if err := e.Send(wire.Header{Kind: wire.KindEager, Tag: 1}, nil); err != nil {
					b.Fatal(err)
				}
				<-replies
			})
		}
	}
}
