//go:build linux

package shm

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func create(tb testing.TB, size int64, opt Options) *Segment {
	tb.Helper()
	s, err := Create(size, opt)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestCreateAnonymous(t *testing.T) {
	for _, tc := range []struct {
		name    string
		noMemfd bool
	}{{"memfd", false}, {"tmpfile", true}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.noMemfd {
				disableMemfd(t)
			}
			s := create(t, 1<<20, Options{})
			if s.Size() != 1<<20 || len(s.Bytes()) != 1<<20 || s.Name() != "" || s.FD() < 0 {
				t.Fatalf("size %d, len %d, name %q, fd %d", s.Size(), len(s.Bytes()), s.Name(), s.FD())
			}
			b := s.Bytes()
			b[0], b[len(b)-1] = 1, 2
			// A second mapping of the same descriptor sees the writes.
			fd, err := unix.Dup(s.FD())
			if err != nil {
				t.Fatal(err)
			}
			s2, err := FromFD(fd, s.Size())
			if err != nil {
				t.Fatal(err)
			}
			if got := s2.Bytes(); got[0] != 1 || got[len(got)-1] != 2 {
				t.Fatalf("second mapping reads %d, %d", got[0], got[len(got)-1])
			}
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if s.Bytes() != nil || s.FD() != -1 {
				t.Fatalf("after Close: %d bytes, fd %d", len(s.Bytes()), s.FD())
			}
		})
	}
}

func disableMemfd(tb testing.TB) {
	orig := memfdCreate
	memfdCreate = func(string, int) (int, error) { return -1, unix.ENOSYS }
	tb.Cleanup(func() { memfdCreate = orig })
}

func TestMemfdSealed(t *testing.T) {
	s := create(t, 1<<20, Options{})
	if err := unix.Ftruncate(s.FD(), 0); err != unix.EPERM {
		t.Fatalf("shrinking a sealed memfd: %v, want EPERM", err)
	}
	if err := unix.Ftruncate(s.FD(), 2<<20); err != unix.EPERM {
		t.Fatalf("growing a sealed memfd: %v, want EPERM", err)
	}
}

func TestCreateNamed(t *testing.T) {
	for _, tc := range []struct {
		name      string
		noTmpfile bool
	}{{"linkat", false}, {"excl", true}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.noTmpfile {
				noTmpfile = true
				t.Cleanup(func() { noTmpfile = false })
			}
			name := prefix + "named-" + tc.name
			old := unix.Umask(0) // the mode must not depend on the umask
			s, err := Create(1<<20, Options{Name: name})
			unix.Umask(old)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			path := filepath.Join(DefaultDir, name)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != 0o600 || fi.Size() != 1<<20 || s.Name() != name {
				t.Fatalf("mode %v, size %d, name %q", fi.Mode(), fi.Size(), s.Name())
			}

			_, err = Create(1<<20, Options{Name: name})
			var pe *fs.PathError
			if !errors.Is(err, fs.ErrExist) || !errors.As(err, &pe) || pe.Op != "shm_open" || pe.Path != path {
				t.Fatalf("duplicate Create: %v, want shm_open %s: file exists", err, path)
			}

			o, err := Open(name, Options{})
			if err != nil {
				t.Fatal(err)
			}
			s.Bytes()[4096] = 42
			if o.Bytes()[4096] != 42 || o.Size() != s.Size() {
				t.Fatalf("Open sees %d bytes, value %d", o.Size(), o.Bytes()[4096])
			}
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("Close of an opened segment removed the name: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Close of the creator left the name: %v", err)
			}
		})
	}
}

func TestUnlinkAfterMap(t *testing.T) {
	name := prefix + "unlink"
	s := create(t, 1<<20, Options{Name: name})
	o, err := Open(name, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := s.Unlink(); err != nil {
		t.Fatal(err)
	}
	if left := segmentsLeft(t, name); len(left) != 0 {
		t.Fatalf("after Unlink: %v", left)
	}
	s.Bytes()[100] = 7
	if o.Bytes()[100] != 7 {
		t.Fatal("mappings no longer shared after Unlink")
	}
	for _, seg := range []*Segment{s, o} {
		if err := seg.Unlink(); err != nil {
			t.Fatalf("second Unlink: %v", err)
		}
	}
	if _, err := Open(name, Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open after Unlink: %v", err)
	}
}

// A Segment never removes a file that replaced its own under the same name.
func TestUnlinkReplaced(t *testing.T) {
	name := prefix + "replaced"
	s := create(t, 1<<20, Options{Name: name})
	if err := os.Remove(filepath.Join(DefaultDir, name)); err != nil {
		t.Fatal(err)
	}
	r := create(t, 1<<20, Options{Name: name})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if left := segmentsLeft(t, name); len(left) != 1 {
		t.Fatalf("the replacement is gone: %v", left)
	}
	r.Close()
}

func TestCloseFD(t *testing.T) {
	s := create(t, 1<<20, Options{})
	if err := s.CloseFD(); err != nil {
		t.Fatal(err)
	}
	if s.FD() != -1 {
		t.Fatalf("FD after CloseFD: %d", s.FD())
	}
	s.Bytes()[0] = 1 // the mapping survives
	if err := s.CloseFD(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// A Segment dropped without Close is unmapped and its descriptor closed by
// the garbage collector.
func TestLostSegmentReleased(t *testing.T) {
	before := len(openFDs())
	func() {
		if _, err := Create(1<<20, Options{}); err != nil {
			t.Fatal(err)
		}
	}()
	end := time.Now().Add(deadline)
	for len(openFDs()) > before {
		if time.Now().After(end) {
			t.Fatalf("descriptor of a lost Segment still open after %v: %v", deadline, openFDs())
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

func TestLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("reserves 3 GiB of memory")
	}
	if math.MaxInt < 1<<32 {
		t.Skip("needs a 64-bit address space")
	}
	const size int64 = 3 << 30
	for _, opt := range []Options{{}, {Name: prefix + "large"}} {
		s := create(t, size, opt)
		b := s.Bytes()
		if int64(len(b)) != size {
			t.Fatalf("len %d", len(b))
		}
		last := len(b) - 1
		b[0], b[last] = 1, 2
		v, err := View[uint64](s, size-8, 1)
		if err != nil {
			t.Fatal(err)
		}
		v[0] = 0x0102030405060708
		if b[last-7] != 8 || b[last] != 1 {
			t.Fatalf("view and bytes disagree at the far end: % x", b[last-7:])
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBadSize(t *testing.T) {
	for _, size := range []int64{0, -1, -1 << 40} {
		for _, opt := range []Options{{}, {Name: prefix + "badsize"}} {
			_, err := Create(size, opt)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), fmt.Sprint(size)) {
				t.Errorf("Create(%d, %+v): %v, want ErrInvalid naming the size", size, opt, err)
			}
		}
		fd, _ := unix.MemfdCreate("x", unix.MFD_CLOEXEC)
		if _, err := FromFD(fd, size); !errors.Is(err, ErrInvalid) {
			t.Errorf("FromFD(%d): %v, want ErrInvalid", size, err)
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
			t.Errorf("FromFD did not close the descriptor on failure")
		}
	}
}

func TestBadName(t *testing.T) {
	for _, name := range []string{"a/b", "..", ".", "/abs", strings.Repeat("x", 256), "nul\x00"} {
		if _, err := Create(1<<20, Options{Name: name}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Create(name %q): %v, want ErrInvalid", name, err)
		}
		if _, err := Open(name, Options{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(%q): %v, want ErrInvalid", name, err)
		}
	}
}

func TestFromFDChecks(t *testing.T) {
	s := create(t, 1<<20, Options{})
	fd, _ := unix.Dup(s.FD())
	if _, err := FromFD(fd, 2<<20); !errors.Is(err, ErrInvalid) {
		t.Errorf("FromFD beyond the end: %v, want ErrInvalid", err)
	}
	if _, err := FromFD(-1, 1<<20); !errors.Is(err, ErrInvalid) {
		t.Errorf("FromFD(-1): %v, want ErrInvalid", err)
	}
	fd, _ = unix.Open(t.TempDir(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if _, err := FromFD(fd, 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("FromFD(directory): %v, want ErrInvalid", err)
	}
	fd, _ = unix.Dup(s.FD())
	part, err := FromFD(fd, 4096) // a prefix of the file is fine
	if err != nil {
		t.Fatal(err)
	}
	part.Close()
}

func TestMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "no-such-dir")
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrNotSupported) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s: %v, want ErrNotSupported and fs.ErrNotExist naming %s", what, err, dir)
		}
	}
	_, err := Create(1<<20, Options{Name: "x", Dir: dir})
	check("Create", err)
	_, err = Open("x", Options{Dir: dir})
	check("Open", err)
	disableMemfd(t)
	_, err = Create(1<<20, Options{Dir: dir})
	check("Create without memfd", err)
}

func TestOpenMissing(t *testing.T) {
	_, err := Open(prefix+"missing", Options{})
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Op != "shm_open" {
		t.Fatalf("Open of a missing segment: %v", err)
	}
	if errors.Is(err, ErrNotSupported) {
		t.Fatalf("a missing segment is not a missing directory: %v", err)
	}
}

// mountTmpfs mounts a tmpfs of the given size limit, or skips the test.
func mountTmpfs(t *testing.T, size string) string {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (%v); run as root to test a full file system", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

func TestFullTmpfs(t *testing.T) {
	dir := mountTmpfs(t, "4m")
	want := fmt.Sprintf("shm: cannot reserve 8 MiB on %s: no space left; free space is 4 MiB", dir)
	check := func(what string, err error) {
		t.Helper()
		if err == nil || err.Error() != want || !errors.Is(err, unix.ENOSPC) {
			t.Errorf("%s: %v\nwant %s", what, err, want)
		}
	}
	_, err := Create(8<<20, Options{Name: "full", Dir: dir})
	check("named", err)
	noTmpfile = true
	_, err = Create(8<<20, Options{Name: "full", Dir: dir})
	noTmpfile = false
	check("named, O_EXCL", err)
	disableMemfd(t)
	_, err = Create(8<<20, Options{Dir: dir})
	check("anonymous", err)
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed Create left %v", entries)
	}
	// What fits, fits.
	s, err := Create(3<<20, Options{Name: "fits", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// reserve fails cleanly when fallocate itself hits ENOSPC after some chunks
// succeeded, reporting the free space without its own partial allocation.
func TestReserveNoSpace(t *testing.T) {
	dir := mountTmpfs(t, "40m")
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	err = reserve(fd, 48<<20, dir)
	want := fmt.Sprintf("shm: cannot reserve 48 MiB on %s: no space left; free space is 40 MiB", dir)
	if err == nil || err.Error() != want {
		t.Fatalf("reserve: %v\nwant %s", err, want)
	}
}

func TestHugePages(t *testing.T) {
	if _, err := Create(1<<20, Options{Name: prefix + "huge", HugePages: true}); !errors.Is(err, ErrInvalid) {
		t.Errorf("named HugePages: %v, want ErrInvalid", err)
	}
	s, err := Create(1<<20, Options{HugePages: true})
	if err != nil {
		if !errors.Is(err, unix.ENOSPC) && !errors.Is(err, ErrNotSupported) {
			t.Fatalf("HugePages: %v, want success, ENOSPC or ErrNotSupported", err)
		}
		t.Skipf("no huge pages here: %v", err)
	}
	defer s.Close()
	if s.Size() < 1<<20 || s.Size()%(2<<20) != 0 {
		t.Errorf("huge page segment of %d bytes", s.Size())
	}
	s.Bytes()[s.Size()-1] = 1
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 512: "512 B", 1024: "1 KiB", 1536: "1.5 KiB", 64 << 20: "64 MiB",
		8 << 30: "8 GiB", 3<<30 + 1<<29: "3.5 GiB", 1<<62 + 1<<61: "6 EiB",
	} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestNilSegment(t *testing.T) {
	var s *Segment
	if s.Bytes() != nil || s.Size() != 0 || s.Name() != "" || s.FD() != -1 {
		t.Error("nil Segment accessors")
	}
	for _, err := range []error{s.Close(), s.CloseFD(), s.Unlink()} {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("method on nil Segment: %v", err)
		}
	}
}
