package shmring

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// Helper processes: the test binary re-executed with SHMRING_HELPER set to
// a role; the other parameters come in SHMRING_* variables.
const helperEnv = "SHMRING_HELPER"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// helperMain runs a helper process's role when the test binary was
// re-executed as one; it reports whether it did.
func helperMain() bool {
	role := os.Getenv(helperEnv)
	if role == "" {
		return false
	}
	var err error
	switch role {
	case "stress":
		err = helperStress()
	case "victim":
		err = helperVictim()
	case "pingpong":
		err = helperPingPong()
	default:
		err = fmt.Errorf("unknown helper role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s rank %s: %v\n", role, os.Getenv("SHMRING_RANK"), err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

func envInt(name string) int {
	v, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		panic(fmt.Sprintf("%s: %v", name, err))
	}
	return v
}

// addrsFor returns the socket names of ranks 0..n-1 of job.
func addrsFor(job string, n int) []string {
	a := make([]string, n)
	for i := range a {
		a[i] = fmt.Sprintf("@gorun-%s-shm-%d", job, i)
	}
	return a
}

// helperCmd builds the command for one helper process.
func helperCmd(t testing.TB, role, job string, rank int, extra ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+role, "SHMRING_JOB="+job,
		"SHMRING_RANK="+strconv.Itoa(rank))
	cmd.Env = append(cmd.Env, extra...)
	cmd.Stderr = os.Stderr
	return cmd
}

// funcHandler is a transport.Handler made of functions.
type funcHandler struct {
	frame func(from int, h wire.Header, b transport.Body) error
	lost  func(from int, err error)
}

func (f *funcHandler) HandleFrame(from int, h wire.Header, b transport.Body) error {
	return f.frame(from, h, b)
}

func (f *funcHandler) PeerLost(from int, err error) {
	if f.lost != nil {
		f.lost(from, err)
	}
}

// stressSize returns the size of message seq from a sender: mostly small,
// some up to 64 KiB, rarely up to 4 MiB.
func stressSize(rng *rand.Rand) int {
	switch x := rng.IntN(1000); {
	case x < 2:
		return rng.IntN(4<<20 + 1)
	case x < 100:
		return rng.IntN(64<<10 + 1)
	default:
		return rng.IntN(257)
	}
}

// stressData is the random source every payload is a slice of.
var stressData = sync.OnceValue(func() []byte {
	b := make([]byte, 8<<20)
	rand.NewChaCha8([32]byte{7}).Read(b)
	return b
})

// helperStress is one rank of the all-to-all stress test: it sends count
// frames to every other rank and checks count frames from each.
func helperStress() error {
	job, rank, n := os.Getenv("SHMRING_JOB"), envInt("SHMRING_RANK"), envInt("SHMRING_N")
	count := envInt("SHMRING_COUNT")
	tr, err := Listen(Config{JobID: job, Secret: testSecret, Self: rank, RingSize: envInt("SHMRING_RING")})
	if err != nil {
		return err
	}
	defer tr.Close()
	data := stressData()
	next := make([]uint64, n)
	rngs := make([]*rand.Rand, n)
	for i := range rngs {
		rngs[i] = rand.New(rand.NewPCG(uint64(i), uint64(rank)))
	}
	var failed atomic.Pointer[error]
	fail := func(err error) {
		failed.CompareAndSwap(nil, &err)
	}
	var got sync.WaitGroup
	got.Add(n - 1)
	var buf [][]byte = make([][]byte, n)
	h := &funcHandler{
		frame: func(from int, h wire.Header, b transport.Body) error {
			want := stressSize(rngs[from])
			if h.Arg0 != next[from] || b.Len() != want || int(h.Tag) != from {
				err := fmt.Errorf("from %d: frame seq %d tag %d len %d, want seq %d tag %d len %d",
					from, h.Arg0, h.Tag, b.Len(), next[from], from, want)
				fail(err)
				return err
			}
			var p []byte
			var err error
			if h.Arg0%2 == 0 {
				p, err = b.Bytes()
			} else {
				if cap(buf[from]) < want {
					buf[from] = make([]byte, want)
				}
				p = buf[from][:want]
				err = b.ReadInto(p)
			}
			if err != nil {
				fail(err)
				return err
			}
			if c := crc32.Checksum(p, castagnoli); uint64(c) != h.Arg1 {
				err := fmt.Errorf("from %d: frame %d of %d bytes: crc %#x, want %#x", from, h.Arg0, want, c, h.Arg1)
				fail(err)
				return err
			}
			next[from]++
			if next[from] == uint64(count) {
				got.Done()
			}
			return nil
		},
		lost: func(from int, err error) { fail(fmt.Errorf("peer %d lost: %w", from, err)) },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eps, err := tr.Connect(ctx, addrsFor(job, n), h)
	if err == nil {
		err = openAll(ctx, eps)
	}
	if err != nil {
		return err
	}
	var sent sync.WaitGroup
	for to, e := range eps {
		if e == nil {
			continue
		}
		sent.Add(1)
		go func() {
			defer sent.Done()
			rng := rand.New(rand.NewPCG(uint64(rank), uint64(to)))
			off := rand.New(rand.NewPCG(uint64(rank), 99))
			for seq := range count {
				size := stressSize(rng)
				o := off.IntN(len(data) - size + 1)
				p := data[o : o+size]
				hd := wire.Header{Kind: wire.KindEager, Tag: int32(rank), Arg0: uint64(seq),
					Arg1: uint64(crc32.Checksum(p, castagnoli))}
				if err := e.Send(hd, p); err != nil {
					fail(fmt.Errorf("send %d to %d: %w", seq, to, err))
					return
				}
			}
		}()
	}
	sent.Wait()
	done := make(chan struct{})
	go func() { got.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		fail(errors.New("timed out waiting for frames"))
	}
	for _, e := range eps {
		if e != nil {
			if err := e.Close(); err != nil {
				fail(err)
			}
		}
	}
	if p := failed.Load(); p != nil {
		return *p
	}
	return nil
}

// helperVictim connects to rank 0 as rank 1, prints READY and waits to be
// killed. With SHMRING_BLOCK=1 its handler never returns, so rank 0's ring
// to it fills up.
func helperVictim() error {
	job := os.Getenv("SHMRING_JOB")
	tr, err := Listen(Config{JobID: job, Secret: testSecret, Self: 1})
	if err != nil {
		return err
	}
	block := os.Getenv("SHMRING_BLOCK") == "1"
	h := &funcHandler{frame: func(int, wire.Header, transport.Body) error {
		if block {
			select {}
		}
		return nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eps, err := tr.Connect(ctx, addrsFor(job, 2), h)
	if err == nil {
		err = openAll(ctx, eps)
	}
	if err != nil {
		return err
	}
	fmt.Println("READY")
	if err := eps[0].Send(wire.Header{Kind: wire.KindEager}, []byte("hello")); err != nil {
		return err
	}
	time.Sleep(time.Minute)
	return nil
}

// startVictim starts a victim as rank 1 and connects rank 0 (this process)
// to it.
func startVictim(t *testing.T, block bool, h transport.Handler) (*Transport, transport.Endpoint, *exec.Cmd) {
	t.Helper()
	job := newJobID()
	tr, err := Listen(Config{JobID: job, Secret: testSecret, Self: 0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	b := "0"
	if block {
		b = "1"
	}
	cmd := helperCmd(t, "victim", job, 1, "SHMRING_BLOCK="+b)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eps, err := tr.Connect(ctx, addrsFor(job, 2), h)
	if err == nil {
		err = openAll(ctx, eps)
	}
	if err != nil {
		t.Fatal(err)
	}
	var line [6]byte
	if _, err := io.ReadFull(out, line[:]); err != nil || !strings.HasPrefix(string(line[:]), "READY") {
		t.Fatalf("victim said %q, %v", line, err)
	}
	return tr, eps[1], cmd
}

// openAll sets up the channel to every peer in eps, retrying while a peer
// (another process of the test, started later) is not listening yet.
func openAll(ctx context.Context, eps []transport.Endpoint) error {
	for _, e := range eps {
		if e == nil {
			continue
		}
		for {
			err := e.(transport.Opener).Open()
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return err
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}
