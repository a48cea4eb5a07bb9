package patterns

// The states of a Batch's tasks: their names, and their files in the
// task directory (see Restarts in the Batch documentation).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// TaskState is the state of a task of a Batch (pshmem's MPIBatch.OPEN, ...).
type TaskState int32

// The states of a task. A task is Open until NextTask hands it to a
// worker, which makes it Running; the worker then records the outcome with
// SetTaskState, Done or Failed by convention. Invalid is no state: the
// result of a failed call or parse.
const (
	Invalid TaskState = -1
	Open    TaskState = 0
	Running TaskState = 1
	Done    TaskState = 2
	Failed  TaskState = 3
)

var taskStateNames = [...]string{"OPEN", "RUNNING", "DONE", "FAILED"}

// String returns the state's name as pshmem writes it, which is also what
// a state file holds: "OPEN", "RUNNING", "DONE", "FAILED", "INVALID"; an
// unknown value is "TaskState(7)".
func (s TaskState) String() string {
	switch {
	case s == Invalid:
		return "INVALID"
	case s.valid():
		return taskStateNames[s]
	}
	return "TaskState(" + strconv.Itoa(int(s)) + ")"
}

// valid reports whether s is a state a task may be in.
func (s TaskState) valid() bool { return s >= Open && s <= Failed }

// ParseTaskState returns the state named s, one of the names String
// returns (pshmem's string_to_state). Errors: ErrInvalid naming s for
// anything else (Invalid is returned with it).
func ParseTaskState(s string) (TaskState, error) {
	if s == "INVALID" {
		return Invalid, nil
	}
	for i, n := range taskStateNames {
		if s == n {
			return TaskState(i), nil
		}
	}
	return Invalid, fmt.Errorf("patterns: %w", errInvalid("unknown task state %q", s))
}

// stateFile is the name of a task's state file in its directory.
const stateFile = "state"

// load makes the initial states on the root: from init, or from the
// directory, which it creates and locks, writing the states it lacks.
func (b *Batch) load(init []TaskState) ([]int32, error) {
	states := make([]int32, b.nTask)
	if b.dir == "" {
		for i, s := range init {
			states[i] = int32(s)
		}
		return states, nil
	}
	_, err := os.Stat(b.dir)
	switch {
	case err == nil && init != nil:
		return nil, errInvalid("Dir %s exists, so the initial states come from it: InitState must be nil", b.dir)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	if err := os.MkdirAll(b.dir, 0o777); err != nil {
		return nil, err
	}
	if err := b.lockDir(); err != nil {
		return nil, err
	}
	for i, name := range b.names {
		if err := os.MkdirAll(filepath.Join(b.dir, name), 0o777); err != nil {
			return nil, err
		}
		s, ok, err := b.readState(i)
		if err != nil {
			return nil, err
		}
		switch {
		case !ok && init != nil:
			s = init[i]
		case !ok, s == Running: // new, or its worker was stopped
			s = Open
		default:
			states[i] = int32(s)
			continue
		}
		if err := b.writeState(i, s); err != nil {
			return nil, err
		}
		states[i] = int32(s)
	}
	return states, nil
}

// lockDir takes the root's exclusive lock on the directory, or fails if
// another Batch holds it.
func (b *Batch) lockDir() error {
	f, err := os.Open(b.dir)
	if err != nil {
		return err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if err == syscall.EWOULDBLOCK {
			return fmt.Errorf("the directory %s is in use by another Batch (of this job or another): one at a time may use it", b.dir)
		}
		return &os.PathError{Op: "flock", Path: b.dir, Err: err}
	}
	b.dirLock = f
	return nil
}

// current returns task's state: with Dir its file's, if it has one
// (fromFile), else mem.
func (b *Batch) current(task int, mem TaskState) (s TaskState, fromFile bool, err error) {
	if b.dir == "" {
		return mem, false, nil
	}
	s, ok, err := b.readState(task)
	if err != nil || !ok {
		return mem, false, err
	}
	return s, true, nil
}

func (b *Batch) statePath(task int) string {
	return filepath.Join(b.dir, b.names[task], stateFile)
}

// readState reads task's state file; ok is false if it has none (no file,
// or one that says INVALID).
func (b *Batch) readState(task int) (s TaskState, ok bool, err error) {
	p := b.statePath(task)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Invalid, false, nil
	}
	if err != nil {
		return Invalid, false, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	s, err = ParseTaskState(strings.TrimSpace(line))
	if err != nil {
		return Invalid, false, fmt.Errorf("task %d: the state file %s holds %q, not a state", task, p, line)
	}
	return s, s != Invalid, nil
}

// writeState replaces task's state file, atomically; nothing without Dir.
func (b *Batch) writeState(task int, s TaskState) error {
	if b.dir == "" {
		return nil
	}
	p := b.statePath(task)
	tmp := p + ".temp"
	if err := os.WriteFile(tmp, []byte(s.String()+"\n"), 0o666); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// hashStrings is a hash of ss (nil and empty alike) for a field, never
// math.MinInt64.
func hashStrings(ss []string) int64 {
	h := fnv.New64a()
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(ss)))
	h.Write(n[:])
	for _, s := range ss {
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return int64(h.Sum64() >> 2)
}

// hashStates is a hash of states for a field, telling nil from empty.
func hashStates(states []TaskState) int64 {
	xs := make([]int, 0, len(states)+2)
	present := 0
	if states != nil {
		present = 1
	}
	xs = append(xs, present, len(states))
	for _, s := range states {
		xs = append(xs, int(s))
	}
	return hashInts(xs...)
}

// showList shows a list of names in an error: its first and last two
// when it is long.
func showList(xs []string) string {
	if xs == nil {
		return "nil"
	}
	if len(xs) <= 5 {
		return fmt.Sprintf("%q", xs)
	}
	n := len(xs)
	return fmt.Sprintf("[%q %q ... %q %q] (%d in all)", xs[0], xs[1], xs[n-2], xs[n-1], n)
}

// showStates is showList for states.
func showStates(states []TaskState) string {
	if states == nil {
		return "nil"
	}
	names := make([]string, len(states))
	for i, s := range states {
		names[i] = s.String()
	}
	return showList(names)
}

// showMask shows a set of states.
func showMask(mask int) string {
	var names []string
	for s := Open; s <= Failed; s++ {
		if mask&(1<<s) != 0 {
			names = append(names, s.String())
		}
	}
	return strings.Join(names, "|")
}
