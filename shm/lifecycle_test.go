//go:build linux

package shm

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func init() {
	helpers["write-pattern"] = func(conn *net.UnixConn) error {
		s, err := recvSegment(conn)
		if err != nil {
			return err
		}
		for i, b := 0, s.Bytes(); i < len(b); i++ {
			b[i] = byte(i*7 + 1)
		}
		return s.Close()
	}
	// hold maps the segment it receives, says so, and waits to be killed.
	helpers["hold"] = func(conn *net.UnixConn) error {
		s, err := recvSegment(conn)
		if err != nil {
			return err
		}
		w, _ := View[uint32](s, 0, 64)
		if err := setWord(&w[wordReady], 1); err != nil {
			return err
		}
		time.Sleep(deadline)
		return errors.New("not killed")
	}
	helpers["hold-panic"] = func(conn *net.UnixConn) error {
		s, err := recvSegment(conn)
		if err != nil {
			return err
		}
		w, _ := View[uint32](s, 0, 64)
		if err := setWord(&w[wordReady], 1); err != nil {
			return err
		}
		panic("deliberate panic holding a segment")
	}
	// create-named creates the segment named by the parent, reports, and
	// then ends as the parent asks: c = Close and exit, e = exit without
	// Close, p = panic, k = wait to be killed.
	helpers["create-named"] = func(conn *net.UnixConn) error {
		var msg [1]byte
		if _, err := conn.Read(msg[:]); err != nil {
			return err
		}
		mode := msg[0]
		s, err := Create(1<<20, Options{Name: prefix + "job-" + string(mode)})
		if err != nil {
			return err
		}
		if _, err := conn.Write([]byte("R")); err != nil {
			return err
		}
		switch mode {
		case 'c':
			return s.Close()
		case 'e':
			os.Exit(0)
		case 'p':
			panic("deliberate panic holding a named segment")
		}
		time.Sleep(deadline)
		return errors.New("not killed")
	}
	// open-hold opens the parent's named segment, reports, and waits to be
	// killed.
	helpers["open-hold"] = func(conn *net.UnixConn) error {
		s, err := Open(prefix+"opened", Options{})
		if err != nil {
			return err
		}
		w, _ := View[uint32](s, 0, 64)
		if err := setWord(&w[wordReady], 1); err != nil {
			return err
		}
		time.Sleep(deadline)
		return errors.New("not killed")
	}
}

// A memfd passed over a Unix socket to another process maps the same pages.
func TestSendFDToChild(t *testing.T) {
	s := create(t, 1<<20, Options{})
	c := spawn(t, "write-pattern")
	c.sendSegment(t, s)
	c.wait(t)
	for i, b := range s.Bytes() {
		if b != byte(i*7+1) {
			t.Fatalf("byte %d is %d, want %d", i, b, byte(i*7+1))
		}
	}
}

func TestSendRecvFD(t *testing.T) {
	s := create(t, 1<<20, Options{})
	a, bf, err := socketpair()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	bc, err := net.FileConn(bf)
	bf.Close()
	if err != nil {
		t.Fatal(err)
	}
	b := bc.(*net.UnixConn)
	defer b.Close()
	a.SetDeadline(time.Now().Add(deadline))
	b.SetDeadline(time.Now().Add(deadline))

	if err := SendFD(a, s.FD(), nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("SendFD without meta: %v, want ErrInvalid", err)
	}
	if _, _, err := RecvFD(b, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("RecvFD without meta: %v, want ErrInvalid", err)
	}
	meta := []byte("0123456789")
	if err := SendFD(a, s.FD(), meta); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(meta))
	fd, n, err := RecvFD(b, got)
	if err != nil || n != len(meta) || string(got) != string(meta) {
		t.Fatalf("RecvFD: %d, %q, %v", n, got, err)
	}
	r, err := FromFD(fd, s.Size())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s.Bytes()[9] = 9
	if r.Bytes()[9] != 9 {
		t.Fatal("received descriptor maps other pages")
	}
	// Data without a descriptor is an error, and so is the end of stream.
	a.Write([]byte("x"))
	if _, _, err := RecvFD(b, got[:1]); err == nil {
		t.Error("RecvFD of a message without descriptor succeeded")
	}
	a.Close()
	if _, _, err := RecvFD(b, got); err == nil {
		t.Error("RecvFD at end of stream succeeded")
	}
}

// Killing or crashing a process that maps an anonymous segment leaves
// nothing behind: the kernel frees a memfd with its last mapping.
func TestCrashWithMemfd(t *testing.T) {
	for _, tc := range []struct {
		helper string
		kill   bool
	}{{"hold", true}, {"hold-panic", false}} {
		t.Run(tc.helper, func(t *testing.T) {
			s := create(t, 1<<20, Options{})
			w, _ := View[uint32](s, 0, 64)
			c := spawn(t, tc.helper)
			c.sendSegment(t, s)
			if err := awaitWord(&w[wordReady], 1); err != nil {
				t.Fatal(err)
			}
			s.Close() // the child now holds the only mapping
			if tc.kill {
				c.kill(t)
			} else {
				<-c.exited
				if c.err == nil {
					t.Fatal("the child did not panic")
				}
			}
			if left := segmentsLeft(t, prefix); len(left) != 0 {
				t.Fatalf("left in %s: %v", DefaultDir, left)
			}
		})
	}
}

// Named segments: a clean Close leaves nothing; exit without Close, panic
// and kill -9 before Unlink leave the name, which Sweep of the job prefix
// removes.
func TestCrashWithNamed(t *testing.T) {
	for _, mode := range []byte("cepk") {
		t.Run(string(mode), func(t *testing.T) {
			job := prefix + "job-" + string(mode)
			t.Cleanup(func() { Sweep(job) }) // even if the test fails
			c := spawn(t, "create-named")
			if _, err := c.conn.Write([]byte{mode}); err != nil {
				t.Fatal(err)
			}
			var msg [1]byte
			if _, err := c.conn.Read(msg[:]); err != nil {
				t.Fatalf("child did not report: %v\n%s", err, c.stderr.String())
			}
			switch mode {
			case 'k':
				c.kill(t)
			case 'p':
				<-c.exited
				if c.err == nil {
					t.Fatal("the child did not panic")
				}
			default:
				c.wait(t)
			}
			left := segmentsLeft(t, job)
			if mode == 'c' {
				if len(left) != 0 {
					t.Fatalf("Close left %v", left)
				}
				return
			}
			if len(left) != 1 {
				t.Fatalf("expected the crash to leave %s, found %v", job, left)
			}
			removed, err := Sweep(job)
			if err != nil || !slices.Equal(removed, []string{filepath.Join(DefaultDir, job)}) {
				t.Fatalf("Sweep: %v, %v", removed, err)
			}
			if left := segmentsLeft(t, job); len(left) != 0 {
				t.Fatalf("after Sweep: %v", left)
			}
		})
	}
}

// Unlinked as soon as every peer has mapped it, a named segment leaves
// nothing when a peer is killed.
func TestKillAfterUnlink(t *testing.T) {
	s := create(t, 1<<20, Options{Name: prefix + "opened"})
	w, _ := View[uint32](s, 0, 64)
	c := spawn(t, "open-hold")
	if err := awaitWord(&w[wordReady], 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Unlink(); err != nil {
		t.Fatal(err)
	}
	c.kill(t)
	if left := segmentsLeft(t, prefix); len(left) != 0 {
		t.Fatalf("left in %s: %v", DefaultDir, left)
	}
}

func TestSweep(t *testing.T) {
	for _, p := range []string{"", "a/b", "x\x00"} {
		if _, err := Sweep(p); !errors.Is(err, ErrInvalid) {
			t.Errorf("Sweep(%q): %v, want ErrInvalid", p, err)
		}
	}
	job := prefix + "sweep-"
	if removed, err := Sweep(job); len(removed) != 0 || err != nil {
		t.Fatalf("Sweep with nothing to do: %v, %v", removed, err)
	}
	var want []string
	for i := range 3 {
		s := create(t, 4096, Options{Name: fmt.Sprintf("%s%d", job, i)})
		s.CloseFD()
		want = append(want, filepath.Join(DefaultDir, s.Name()))
	}
	dir := filepath.Join(DefaultDir, job+"dir") // not a segment: kept
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	other := create(t, 4096, Options{Name: prefix + "other"})
	removed, err := Sweep(job)
	slices.Sort(removed)
	if err != nil || !slices.Equal(removed, want) {
		t.Fatalf("Sweep: %v, %v; want %v", removed, err, want)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("Sweep removed a directory: %v", err)
	}
	if left := segmentsLeft(t, other.Name()); len(left) != 1 {
		t.Fatal("Sweep removed a segment of another prefix")
	}
}
