//go:build linux

package shm

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A memfd larger than the memory left fails at Create; without the check,
// fallocate would call the OOM killer instead of returning ENOMEM.
func TestOvercommit(t *testing.T) {
	if math.MaxInt < 1<<50 {
		t.Skip("1 PiB exceeds a 32-bit address space")
	}
	_, err := Create(1<<50, Options{})
	if !errors.Is(err, unix.ENOMEM) || !strings.HasPrefix(err.Error(), "shm: cannot reserve 1 PiB on memfd: out of memory; available memory is ") {
		t.Errorf("memfd: %v", err)
	}
	_, err = Create(1<<50, Options{Name: prefix + "overcommit"})
	if !errors.Is(err, unix.ENOSPC) || !strings.HasPrefix(err.Error(), "shm: cannot reserve 1 PiB on /dev/shm: no space left; free space is ") {
		t.Errorf("named: %v", err)
	}
}

func TestAvailableMemory(t *testing.T) {
	avail, ok := availableMemory()
	if !ok || avail <= 0 {
		t.Fatalf("availableMemory: %d, %v", avail, ok)
	}
	t.Logf("available: %s", formatBytes(avail))
}

func TestCgroupHeadroom(t *testing.T) {
	root := t.TempDir()
	write := func(path, s string) {
		t.Helper()
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// v1: the parent's limit is the tighter one.
	write("memory/job/memory.limit_in_bytes", "1000")
	write("memory/job/memory.usage_in_bytes", "100")
	write("memory/job/rank/memory.limit_in_bytes", "9223372036854771712")
	write("memory/job/rank/memory.usage_in_bytes", "50")
	if got := cgroupHeadroom(root, "4:memory:/job/rank\n3:cpu:/x\n"); got != 900 {
		t.Errorf("v1: %d, want 900", got)
	}
	// v2 in the hybrid layout, "max" and an over-limit usage.
	write("unified/a/memory.max", "max")
	write("unified/a/memory.current", "7")
	write("unified/a/b/memory.max", "64")
	write("unified/a/b/memory.current", "100")
	if got := cgroupHeadroom(root, "0::/a/b\n"); got != 0 {
		t.Errorf("v2: %d, want 0", got)
	}
	if got := cgroupHeadroom(root, "0::/nowhere\n"); got != math.MaxInt64 {
		t.Errorf("no files: %d, want no limit", got)
	}
}
