package shm

import (
	"runtime"
	"sync"
)

// DefaultDir is where named segments live when [Options.Dir] is empty.
const DefaultDir = "/dev/shm"

// Options configure [Create] and [Open]. The zero value asks for an anonymous
// segment (a memfd) of ordinary pages.
type Options struct {
	// Name, if not empty, makes the segment named: a file Dir/Name that
	// unrelated processes can attach to with [Open]. Use a job-tagged name
	// such as "gorun-<job>-<id>" so that [Sweep] can find leftovers. A name
	// must not contain a slash. Empty means anonymous: share the segment by
	// passing [Segment.FD] to peers with [SendFD].
	Name string

	// Dir is the directory of named segments, and of anonymous segments when
	// memfd_create is unavailable. Empty means [DefaultDir].
	Dir string

	// HugePages backs an anonymous segment with hugetlbfs pages
	// (MFD_HUGETLB). The size is rounded up to the huge page size, and the
	// pages come from the pool set by vm.nr_hugepages: an empty pool is an
	// error at Create. Named segments get huge pages only from a Dir on
	// hugetlbfs, so HugePages with a Name is an error.
	HugePages bool
}

func (o *Options) dir() string {
	if o.Dir == "" {
		return DefaultDir
	}
	return o.Dir
}

// Segment is a shared memory segment mapped read-write into this process.
//
// The accessors may be called from several goroutines. Close, CloseFD and
// Unlink may be called concurrently with each other, but not while another
// goroutine still reads or writes the mapping: after Close any access to
// [Segment.Bytes] or to a [View] faults.
type Segment struct {
	// data is the whole mapping, nil once closed. Its length is Size.
	data []byte
	ro   []byte // a second, read-only mapping (ReadOnly), or nil
	size int64
	name string // "" for anonymous segments

	mu       sync.Mutex
	fd       int    // -1 once closed or dropped
	path     string // Dir/Name for named segments
	owner    bool   // this Segment created path: Close removes it
	unlinked bool   // path was removed
	dev, ino uint64 // identity of the file at path, to unlink only our own
	cleanup  runtime.Cleanup
}

// Bytes returns the mapping, or nil after [Segment.Close]. The slice is
// valid until Close; keep the Segment reachable while using it (the garbage
// collector unmaps a lost Segment).
func (s *Segment) Bytes() []byte {
	if s == nil {
		return nil
	}
	return s.data
}

// Size returns the size of the mapping in bytes.
func (s *Segment) Size() int64 {
	if s == nil {
		return 0
	}
	return s.size
}

// Name returns the name of a named segment, or "" for an anonymous one.
func (s *Segment) Name() string {
	if s == nil {
		return ""
	}
	return s.name
}

// FD returns the segment's file descriptor, for [SendFD], or -1 after
// [Segment.CloseFD] or [Segment.Close]. The Segment owns it: do not close it.
func (s *Segment) FD() int {
	if s == nil {
		return -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fd
}
