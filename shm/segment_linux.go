package shm

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Test hooks that simulate older or restricted systems.
var (
	memfdCreate = unix.MemfdCreate // seccomp or Linux < 3.17 make this fail
	noTmpfile   = false            // true: behave as a file system without O_TMPFILE
)

// reserveChunk bounds one fallocate call. tmpfs undoes a whole fallocate
// that a signal interrupts, so a single multi-GiB call could restart forever
// under a 100 Hz profiling timer; a chunk takes a few milliseconds.
const reserveChunk = 16 << 20

// memoryCheckMin is the smallest request checked against the memory left.
// The check reads /proc and cgroup files (0.3 ms measured), a small cost
// next to zeroing 64 MiB (about 50 ms) but a large one next to 1 MiB.
const memoryCheckMin = 64 << 20

// Create creates a segment of size bytes, reserves its pages and maps it.
//
// With an empty opt.Name the segment is anonymous: a memfd, or an unnamed
// O_TMPFILE file in opt.Dir where memfd_create is unavailable. The kernel
// frees it when the last descriptor and mapping are gone, so it cannot
// outlive the processes that use it. Share it with [SendFD].
//
// With opt.Name the segment is the file Dir/Name, mode 0600. Create fails
// with an error matching [fs.ErrExist] if the name is taken. The name appears
// only once the pages are reserved, so [Open] never sees a partial segment.
// The name outlives every process until [Segment.Unlink], [Segment.Close] of
// this Segment, or [Sweep].
//
// All pages are reserved before Create returns (fallocate), so a full file
// system is an error here ("shm: cannot reserve 8 GiB on /dev/shm: no space
// left; free space is 64 MiB", matching [syscall.ENOSPC]) and never a SIGBUS
// on first touch. A tmpfs-backed request (memfd, /dev/shm) of 64 MiB or more
// that exceeds the memory left, by MemAvailable and the memory cgroup's
// limit, fails with an error matching [syscall.ENOMEM] rather than waking
// the OOM killer.
// Reserving zeroes the pages: Create costs time and memory in proportion to
// size. A size of 0 or less is an error matching
// [ErrInvalid]; a missing Dir matches [ErrNotSupported] and [fs.ErrNotExist].
func Create(size int64, opt Options) (*Segment, error) {
	if err := checkSize(size); err != nil {
		return nil, err
	}
	if opt.Name == "" {
		return createAnon(size, &opt)
	}
	if opt.HugePages {
		return nil, invalidf("HugePages needs an anonymous segment; for named huge-page segments set Dir to a hugetlbfs mount")
	}
	return createNamed(size, &opt)
}

func createAnon(size int64, opt *Options) (*Segment, error) {
	flags, where := unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING, "memfd"
	if opt.HugePages {
		flags, where = flags|unix.MFD_HUGETLB, "huge pages (vm.nr_hugepages)"
	}
	fd, err := memfdCreate("shm", flags)
	sealable := err == nil
	if err != nil {
		if opt.HugePages {
			return nil, errorf([]error{ErrNotSupported, err}, "no huge-page memfd: memfd_create: %v", err)
		}
		// An unnamed O_TMPFILE file on tmpfs behaves like a memfd (freed
		// with its last descriptor and mapping) but is capped by the size of
		// its file system.
		dir := opt.dir()
		var terr error
		if fd, terr = openTmpfile(dir); terr != nil {
			return nil, errorf([]error{ErrNotSupported, err, terr},
				"no anonymous shared memory: memfd_create: %v; %s", err, strings.TrimPrefix(terr.Error(), "shm: "))
		}
		where = dir
	}
	if opt.HugePages {
		var st unix.Statfs_t
		if err := unix.Fstatfs(fd, &st); err == nil && st.Bsize > 0 {
			page := int64(st.Bsize) // the huge page size on hugetlbfs
			size = (size + page - 1) / page * page
		}
	}
	err = preflight(fd, size, where)
	if err == nil {
		err = reserve(fd, size, where)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if sealable {
		// No process holding the fd can shrink the file under a peer's
		// mapping (which would SIGBUS the peer) or grow it.
		seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
			unix.Close(fd)
			return nil, &fs.PathError{Op: "fcntl", Path: where, Err: err}
		}
	}
	data, err := mmap(fd, size, where)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return newSegment(data, fd, "", "", false), nil
}

func createNamed(size int64, opt *Options) (*Segment, error) {
	if err := checkName(opt.Name); err != nil {
		return nil, err
	}
	dir := opt.dir()
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, opt.Name)
	// Fail before spending time reserving pages; the link below is what
	// makes creation exclusive.
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err == nil {
		return nil, &fs.PathError{Op: "shm_open", Path: path, Err: unix.EEXIST}
	}

	// Preferred: reserve an unnamed file, then give it the name with
	// linkat, which fails with EEXIST like O_EXCL. A crash before the link
	// leaves nothing behind, and peers never see a partly reserved file.
	fd, err := openTmpfile(dir)
	if err == nil {
		err = preflight(fd, size, dir)
		if err == nil {
			err = reserve(fd, size, dir)
		}
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
		if err != nil {
			unix.Close(fd)
			if err == unix.EEXIST {
				return nil, &fs.PathError{Op: "shm_open", Path: path, Err: err}
			}
			fd = -1 // no /proc: fall back to O_EXCL below
		}
	} else {
		fd = -1
	}

	if fd < 0 {
		fd, err = unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, &fs.PathError{Op: "shm_open", Path: path, Err: err}
		}
		err = unix.Fchmod(fd, 0o600) // the umask may have removed bits
		if err == nil {
			err = preflight(fd, size, dir)
		}
		if err == nil {
			err = reserve(fd, size, dir)
		}
		if err != nil {
			unix.Unlink(path)
			unix.Close(fd)
			return nil, err
		}
	}

	data, err := mmap(fd, size, path)
	if err != nil {
		unix.Unlink(path)
		unix.Close(fd)
		return nil, err
	}
	s := newSegment(data, fd, opt.Name, path, true)
	if err := unix.Fstat(fd, &st); err == nil {
		s.dev, s.ino = st.Dev, st.Ino
	}
	return s, nil
}

// Open maps the named segment opt.Dir/name created by another process with
// [Create]. The file must be a regular file owned by this process's
// effective user. A missing segment matches [fs.ErrNotExist]; a missing Dir
// also matches [ErrNotSupported].
func Open(name string, opt Options) (*Segment, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	dir := opt.dir()
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name)
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "shm_open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		err = invalidf("%s is not a regular file", path)
	case int(st.Uid) != os.Geteuid():
		err = errorf([]error{unix.EACCES}, "%s belongs to uid %d, not to this process (uid %d)", path, st.Uid, os.Geteuid())
	case st.Size <= 0:
		err = invalidf("segment %s is empty (its Create has not finished)", path)
	}
	if err == nil {
		err = checkSize(st.Size)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	data, err := mmap(fd, st.Size, path)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	s := newSegment(data, fd, name, path, false)
	s.dev, s.ino = st.Dev, st.Ino
	return s, nil
}

// FromFD maps size bytes of the segment behind fd, typically a descriptor
// received with [RecvFD]. The Segment takes ownership of fd: Close closes it,
// and FromFD closes it when it fails. size must be positive and at most the
// size of the file.
func FromFD(fd int, size int64) (*Segment, error) {
	if fd < 0 {
		return nil, invalidf("bad file descriptor %d", fd)
	}
	err := checkSize(size)
	var st unix.Stat_t
	if err == nil {
		if err = unix.Fstat(fd, &st); err != nil {
			err = os.NewSyscallError("fstat", err)
		}
	}
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
		err = invalidf("descriptor %d is not a regular file", fd)
	}
	if err == nil && st.Size < size {
		err = invalidf("descriptor %d holds %d bytes, want %d", fd, st.Size, size)
	}
	var data []byte
	if err == nil {
		unix.CloseOnExec(fd)
		data, err = mmap(fd, size, "fd "+strconv.Itoa(fd))
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return newSegment(data, fd, "", "", false), nil
}

// OpenPeer maps size bytes of an anonymous segment that another process of
// this user holds open as descriptor fd, by opening /proc/pid/fd/fd: a way
// to share a memfd without a unix socket. The peer must keep fd open until
// OpenPeer returns; the segment stays anonymous, so nothing of it outlives
// the processes that map it. The kernel allows it for a process of the same
// user that may read the peer's /proc entries; a refusal matches
// [fs.ErrPermission], a closed descriptor or a gone process
// [fs.ErrNotExist]. The file must belong to this process's effective user.
func OpenPeer(pid, fd int, size int64) (*Segment, error) {
	if pid <= 0 || fd < 0 {
		return nil, invalidf("OpenPeer(pid %d, fd %d): bad process or descriptor", pid, fd)
	}
	if err := checkSize(size); err != nil {
		return nil, err
	}
	path := "/proc/" + strconv.Itoa(pid) + "/fd/" + strconv.Itoa(fd)
	nfd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(nfd, &st); err != nil {
		unix.Close(nfd)
		return nil, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if int(st.Uid) != os.Geteuid() {
		unix.Close(nfd)
		return nil, errorf([]error{unix.EACCES}, "%s belongs to uid %d, not to this process (uid %d)", path, st.Uid, os.Geteuid())
	}
	return FromFD(nfd, size)
}

// ReadOnly maps the segment a second time, read-only, and returns that
// view: the same memory as Bytes, but a store through it faults (SIGSEGV,
// which Go turns into a panic) instead of changing it. It needs the
// descriptor, so call it before CloseFD; later calls return the same view.
// Close unmaps it with the rest.
func (s *Segment) ReadOnly() ([]byte, error) {
	if s == nil {
		return nil, invalidf("ReadOnly of nil Segment")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ro != nil {
		return s.ro, nil
	}
	if s.fd < 0 || s.data == nil {
		return nil, invalidf("ReadOnly: the segment's descriptor is closed")
	}
	ro, err := unix.Mmap(s.fd, 0, len(s.data), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	s.ro = ro
	s.cleanup.Stop()
	s.cleanup = runtime.AddCleanup(s, release, mapping{data: s.data, ro: ro, fd: s.fd})
	return ro, nil
}

// FileID returns the device and inode numbers of the file behind the
// segment's descriptor, by which a process that opened a peer's segment
// (OpenPeer) can check that it reached the one it was told of. It fails
// after [Segment.CloseFD].
func (s *Segment) FileID() (dev, ino uint64, err error) {
	if s == nil {
		return 0, 0, invalidf("FileID of nil Segment")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return 0, 0, invalidf("FileID: the segment's descriptor is closed")
	}
	var st unix.Stat_t
	if err := unix.Fstat(s.fd, &st); err != nil {
		return 0, 0, os.NewSyscallError("fstat", err)
	}
	return st.Dev, st.Ino, nil
}

// Close unmaps the segment and closes its descriptor. If this Segment
// created a named segment that is still linked, Close also removes the name.
// Close is idempotent. After Close, [Segment.Bytes] returns nil and any slice
// obtained earlier must not be used.
func (s *Segment) Close() error {
	if s == nil {
		return invalidf("Close of nil Segment")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data == nil {
		return nil
	}
	s.cleanup.Stop()
	var errs []error
	if s.owner {
		errs = append(errs, s.unlink())
	}
	if err := unix.Munmap(s.data); err != nil {
		errs = append(errs, os.NewSyscallError("munmap", err))
	}
	if s.ro != nil {
		if err := unix.Munmap(s.ro); err != nil {
			errs = append(errs, os.NewSyscallError("munmap", err))
		}
		s.ro = nil
	}
	s.data = nil
	if s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
	return errors.Join(errs...)
}

// CloseFD closes the segment's descriptor and keeps the mapping. Use it
// once every peer holds its own descriptor or mapping, to save descriptors.
// Afterwards [Segment.FD] returns -1 and the segment can no longer be passed
// on. CloseFD is idempotent.
func (s *Segment) CloseFD() error {
	if s == nil {
		return invalidf("CloseFD of nil Segment")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return nil
	}
	err := unix.Close(s.fd)
	s.fd = -1
	if s.data != nil {
		s.cleanup.Stop()
		s.cleanup = runtime.AddCleanup(s, release, mapping{data: s.data, ro: s.ro, fd: -1})
	}
	if err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}

// Unlink removes the name of a named segment, so that no other process can
// [Open] it and the memory is freed with the last mapping. Call it as soon
// as every peer has opened the segment. Existing mappings keep working.
// Unlink is idempotent, does nothing for anonymous segments, and leaves
// alone a file that has replaced the segment under the same name.
func (s *Segment) Unlink() error {
	if s == nil {
		return invalidf("Unlink of nil Segment")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unlink()
}

func (s *Segment) unlink() error {
	if s.path == "" || s.unlinked {
		return nil
	}
	var st unix.Stat_t
	err := unix.Lstat(s.path, &st)
	if err == nil && st.Dev == s.dev && st.Ino == s.ino {
		err = unix.Unlink(s.path)
	}
	if err != nil && err != unix.ENOENT {
		return &fs.PathError{Op: "shm_unlink", Path: s.path, Err: err}
	}
	s.unlinked, s.owner = true, false
	return nil
}

// mapping is what the garbage collector releases for a lost Segment.
type mapping struct {
	data, ro []byte
	fd       int
}

// release is the safety net for a Segment dropped without Close. It unmaps
// and closes the descriptor: a memfd keeps its pages while any descriptor is
// open, so unmapping alone would free nothing. It never unlinks a name;
// leftover names are for Sweep.
func release(m mapping) {
	unix.Munmap(m.data)
	if m.ro != nil {
		unix.Munmap(m.ro)
	}
	if m.fd >= 0 {
		unix.Close(m.fd)
	}
}

func newSegment(data []byte, fd int, name, path string, owner bool) *Segment {
	s := &Segment{data: data, size: int64(len(data)), name: name, fd: fd, path: path, owner: owner}
	s.cleanup = runtime.AddCleanup(s, release, mapping{data: data, fd: fd})
	return s
}

func mmap(fd int, size int64, where string) ([]byte, error) {
	data, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, &fs.PathError{Op: "mmap", Path: where, Err: err}
	}
	return data, nil
}

// openTmpfile opens an unnamed file in dir, mode 0600.
func openTmpfile(dir string) (int, error) {
	if err := checkDir(dir); err != nil {
		return -1, err
	}
	if noTmpfile {
		return -1, &fs.PathError{Op: "open", Path: dir, Err: unix.EOPNOTSUPP}
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		if err = unix.Fchmod(fd, 0o600); err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	return fd, nil
}

// preflight fails fast, before any page is zeroed, when size exceeds the
// space left on the file system of fd or, for tmpfs, the memory left.
func preflight(fd int, size int64, where string) error {
	var st unix.Statfs_t
	if unix.Fstatfs(fd, &st) != nil {
		return nil
	}
	if free := int64(st.Bavail) * int64(st.Bsize); st.Blocks > 0 && size > free { // 0 blocks: no limit
		return noSpace(size, where, free)
	}
	if st.Type != unix.TMPFS_MAGIC || size < memoryCheckMin { // tmpfs: memfd, /dev/shm
		return nil
	}
	if avail, ok := availableMemory(); ok && size > avail {
		return errorf([]error{unix.ENOMEM}, "cannot reserve %s on %s: out of memory; available memory is %s",
			formatBytes(size), where, formatBytes(avail))
	}
	return nil
}

// reserve allocates the pages of [0, size) in fd and then sets its size, so
// that running out of memory is an error now instead of a SIGBUS at first
// touch, and a process that opens the file sees either no data or all of it.
func reserve(fd int, size int64, where string) error {
	var err error
	for off := int64(0); off < size; {
		n := min(size-off, reserveChunk)
		if err = unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, off, n); err == unix.EINTR {
			continue
		}
		if err != nil {
			break
		}
		off += n
	}
	if err == nil {
		if err = unix.Ftruncate(fd, size); err == nil {
			return nil
		}
	}
	// Give back what the earlier chunks took, so the free space we report
	// is what others see, then explain.
	unix.Ftruncate(fd, 0)
	switch err {
	case unix.ENOSPC:
		var st unix.Statfs_t
		free := int64(-1)
		if unix.Fstatfs(fd, &st) == nil {
			free = int64(st.Bavail) * int64(st.Bsize)
		}
		return noSpace(size, where, free)
	case unix.ENOMEM:
		return errorf([]error{err}, "cannot reserve %s on %s: out of memory", formatBytes(size), where)
	case unix.EOPNOTSUPP:
		return errorf([]error{ErrNotSupported, err}, "cannot reserve %s on %s: the file system has no fallocate", formatBytes(size), where)
	}
	return errorf([]error{err}, "cannot reserve %s on %s: %v", formatBytes(size), where, err)
}

func noSpace(size int64, where string, free int64) error {
	msg := "cannot reserve %s on %s: no space left; free space is %s"
	if free < 0 {
		return errorf([]error{unix.ENOSPC}, msg, formatBytes(size), where, "unknown")
	}
	return errorf([]error{unix.ENOSPC}, msg, formatBytes(size), where, formatBytes(free))
}

func checkSize(size int64) error {
	if size <= 0 {
		return invalidf("segment size must be positive, got %d", size)
	}
	if uint64(size) > math.MaxInt {
		return invalidf("segment size %d exceeds the address space", size)
	}
	return nil
}

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 255 || strings.ContainsAny(name, "/\x00") {
		return invalidf("bad segment name %q: want a file name of 1 to 255 bytes without slashes", name)
	}
	return nil
}

func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && dir == DefaultDir:
		return errorf([]error{ErrNotSupported, err}, "no shared memory directory %s (is a tmpfs mounted there?)", dir)
	case errors.Is(err, fs.ErrNotExist):
		return errorf([]error{ErrNotSupported, err}, "no shared memory directory %s", dir)
	case err != nil:
		return err
	case !fi.IsDir():
		return errorf([]error{ErrNotSupported, unix.ENOTDIR}, "shared memory directory %s is not a directory", dir)
	}
	return nil
}
