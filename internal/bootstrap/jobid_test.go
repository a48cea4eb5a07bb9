package bootstrap

import (
	"strings"
	"testing"
)

func TestJobID(t *testing.T) {
	id := NewJobID(4242)
	if pid, ok := LauncherPID(id); !ok || pid != 4242 {
		t.Fatalf("LauncherPID(%q) = %d, %v", id, pid, ok)
	}
	if id == NewJobID(4242) {
		t.Fatal("two job ids are equal")
	}
	env := &Env{JobID: id, Rank: 0, Size: 1, LocalSize: 1, Node: "n", Coord: "127.0.0.1:1", Secret: make([]byte, 32)}
	m := map[string]string{}
	for _, kv := range env.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	if _, err := Lookup(func(k string) string { return m[k] }); err != nil {
		t.Fatalf("a NewJobID id is refused by Lookup: %v", err)
	}
	name := ShmPrefix(id) + "win3"
	if job, ok := ShmJob(name); !ok || job != id {
		t.Fatalf("ShmJob(%q) = %q, %v", name, job, ok)
	}
	for _, bad := range []string{"gorun", "other-1.2-x", "gorun--x"} {
		if _, ok := ShmJob(bad); ok {
			t.Errorf("ShmJob(%q) accepted", bad)
		}
	}
	if _, ok := LauncherPID("abc"); ok {
		t.Error("LauncherPID accepted an id without a pid")
	}
}

// A host's ranks carry the job id of their keeper there: the same job,
// judged by a pid of that host.
func TestForKeeper(t *testing.T) {
	id := NewJobID(4242)
	remote := ForKeeper(id, 77)
	if pid, ok := LauncherPID(remote); !ok || pid != 77 {
		t.Fatalf("LauncherPID(%q) = %d, %v, want 77", remote, pid, ok)
	}
	_, a, _ := strings.Cut(id, ".")
	_, b, _ := strings.Cut(remote, ".")
	if a != b {
		t.Fatalf("ForKeeper changed the job's random part: %q -> %q", id, remote)
	}
	if got := ForKeeper(remote, 4242); got != id {
		t.Fatalf("ForKeeper back = %q, want %q", got, id)
	}
}
