package patterns_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/patterns"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// The tests of Batch: pshmem's test_batch and test_filesystem on every
// layout, the order and states NextTask takes, the state files, bad input
// on one rank, a nil communicator, and a job killed and started again on
// its directory.

// batchTasks is the number of tasks of pshmem's tests.
const batchTasks = 25

// batchNames are the tasks' directory names.
func batchNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("task_%03d", i)
	}
	return names
}

// batchLayouts are the goroutine-rank layouts of the collective tests:
// pshmem's (workers of 2 at an even size, of 1 at an odd one), the root
// elsewhere than rank 0, two emulated nodes over shared-memory rings and
// TCP, and every rank its own node (every state operation a message).
var batchLayouts = []struct {
	name     string
	np, ws   int
	root     int
	cfg      runtime.Config
	withDirs bool // also run with a Dir
}{
	{"np1", 1, 1, 0, runtime.Config{}, true},
	{"np2-ws2", 2, 2, 0, runtime.Config{}, false},
	{"np3-ws1", 3, 1, 0, runtime.Config{}, true},
	{"np4-ws2", 4, 2, 0, runtime.Config{}, true},
	{"np4-ws1-root3", 4, 1, 3, runtime.Config{}, false},
	{"np4-ws2-nodes2", 4, 2, 0, runtime.Config{LocalNodes: 2, Transports: []string{"self", "shm", "tcp"}}, true},
	{"np3-ws1-nodes3-root2", 3, 1, 2, runtime.Config{LocalNodes: 3}, true},
}

// batchRun is pshmem's test_batch (and, with a Dir, test_filesystem):
// the workers take tasks until there are none, every rank of a worker
// counts the tasks it was given, and then the counts summed over the ranks
// must be workerSize for every task: each task went to exactly one worker.
// Every rank then reads every state (Done), and Close ends it.
func batchRun(c *runtime.Comm, ws, root int, dir string) error {
	cfg := patterns.BatchConfig{Root: root}
	if dir != "" {
		cfg.Dir, cfg.Names = dir, batchNames(batchTasks)
	}
	b, err := patterns.NewBatch(c, ws, batchTasks, cfg)
	if err != nil {
		return err
	}
	if b.NTask() != batchTasks || b.WorkerSize() != ws || b.NWorker() != c.Size()/ws ||
		b.Worker() != c.Rank()/ws || b.WorkerRank() != c.Rank()%ws || b.Comm() != c || b.Root() != root {
		return fmt.Errorf("accessors: %d tasks, workers of %d, %d workers, worker %d, rank %d in it",
			b.NTask(), b.WorkerSize(), b.NWorker(), b.Worker(), b.WorkerRank())
	}
	if wc := b.WorkerComm(); c != nil && (wc.Size() != ws || wc.Rank() != c.Rank()%ws) {
		return fmt.Errorf("the worker communicator has rank %d of %d", wc.Rank(), wc.Size())
	}
	counts := make([]int64, batchTasks)
	for {
		task, ok, err := b.NextTask()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if task < 0 || task >= batchTasks {
			return fmt.Errorf("NextTask returned task %d", task)
		}
		counts[task]++
		// The worker's work: its ranks agree they have the same task.
		got := []int64{0}
		if err := runtime.Allreduce(b.WorkerComm(), []int64{int64(task)}, got, runtime.Sum); err != nil {
			return err
		}
		if got[0] != int64(task*ws) {
			return fmt.Errorf("the ranks of worker %d were given different tasks (sum %d, task %d)", b.Worker(), got[0], task)
		}
		if b.WorkerRank() == 0 {
			if s, err := b.TaskState(task); err != nil || s != patterns.Running {
				return fmt.Errorf("task %d is %v (%v) while it runs, want RUNNING", task, s, err)
			}
			if err := b.SetTaskState(task, patterns.Done); err != nil {
				return err
			}
		}
	}
	total := make([]int64, batchTasks)
	if err := runtime.Allreduce(c, counts, total, runtime.Sum); err != nil {
		return err
	}
	for task, n := range total {
		if n != int64(ws) {
			return fmt.Errorf("task %d was run by %d ranks, want %d (one worker)", task, n, ws)
		}
	}
	for task := range batchTasks {
		if s, err := b.TaskState(task); err != nil || s != patterns.Done {
			return fmt.Errorf("task %d is %v (%v) at the end, want DONE", task, s, err)
		}
	}
	// Nothing more to take, on every worker.
	if task, ok, err := b.NextTask(); err != nil || ok {
		return fmt.Errorf("NextTask after the end: %d, %v, %v", task, ok, err)
	}
	if err := b.Close(); err != nil {
		return err
	}
	if err := b.Close(); err != nil {
		return fmt.Errorf("second Close: %v", err)
	}
	if _, _, err := b.NextTask(); !errors.Is(err, runtime.ErrClosed) {
		return fmt.Errorf("NextTask after Close: %v, want ErrClosed", err)
	}
	if err := b.SetTaskState(0, patterns.Open); !errors.Is(err, runtime.ErrClosed) {
		return fmt.Errorf("SetTaskState after Close: %v, want ErrClosed", err)
	}
	if _, err := b.TaskState(0); !errors.Is(err, runtime.ErrClosed) {
		return fmt.Errorf("TaskState after Close: %v, want ErrClosed", err)
	}
	if dir != "" {
		return batchCheckFiles(dir, batchTasks, "DONE")
	}
	return nil
}

// batchCheckFiles checks that every task's state file says want, and that
// no temporary file is left.
func batchCheckFiles(dir string, n int, want string) error {
	for _, name := range batchNames(n) {
		b, err := os.ReadFile(filepath.Join(dir, name, "state"))
		if err != nil {
			return err
		}
		if string(b) != want+"\n" {
			return fmt.Errorf("%s/state holds %q, want %q", name, b, want+"\n")
		}
		if _, err := os.Stat(filepath.Join(dir, name, "state.temp")); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s/state.temp is left (%v)", name, err)
		}
	}
	return nil
}

func TestBatch(t *testing.T) {
	for _, l := range batchLayouts {
		for _, withDir := range []bool{false, true} {
			if withDir && !l.withDirs {
				continue
			}
			name := l.name
			if withDir {
				name += "-dir"
			}
			t.Run(name, func(t *testing.T) {
				dir := ""
				if withDir {
					dir = filepath.Join(t.TempDir(), "tasks")
				}
				cfg := ranktest.Config{Runtime: l.cfg}
				cfg.Run(t, l.np, func(t testing.TB, c *runtime.Comm) {
					if err := batchRun(c, l.ws, l.root, dir); err != nil {
						t.Fatal(err)
					}
				})
			})
		}
	}
}

// A nil communicator, with workers of one rank, is a batch of this rank
// alone; workers of two are an error.
func TestBatchSerial(t *testing.T) {
	if err := batchRun(nil, 1, 0, ""); err != nil {
		t.Fatal(err)
	}
	if err := batchRun(nil, 1, 0, filepath.Join(t.TempDir(), "tasks")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ws, root int
		want     string
	}{
		{2, 0, "workerSize is 2 with a nil communicator"},
		{0, 0, "workerSize 0 is not positive"},
		{1, 1, "Root 1 is out of range [0,1)"},
	} {
		_, err := patterns.NewBatch(nil, tc.ws, 3, patterns.BatchConfig{Root: tc.root})
		var oe *patterns.OpError
		if !errors.Is(err, runtime.ErrInvalid) || !errors.As(err, &oe) || oe.Op != "NewBatch" || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewBatch(nil, %d, 3, Root %d): %v, want an ErrInvalid *OpError saying %q", tc.ws, tc.root, err, tc.want)
		}
	}
	// No tasks: nothing to take.
	b, err := patterns.NewBatch(nil, 1, 0, patterns.BatchConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if task, ok, err := b.NextTask(); ok || err != nil || task != -1 {
		t.Errorf("NextTask with no tasks: %d, %v, %v", task, ok, err)
	}
	if _, err := b.TaskState(0); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("TaskState(0) of no tasks: %v, want ErrInvalid", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBatchTaskStateNames(t *testing.T) {
	for s, name := range map[patterns.TaskState]string{
		patterns.Open: "OPEN", patterns.Running: "RUNNING", patterns.Done: "DONE",
		patterns.Failed: "FAILED", patterns.Invalid: "INVALID",
	} {
		if s.String() != name {
			t.Errorf("%d.String() = %q, want %q", int(s), s.String(), name)
		}
		if got, err := patterns.ParseTaskState(name); got != s || err != nil {
			t.Errorf("ParseTaskState(%q) = %v, %v", name, got, err)
		}
	}
	if s := patterns.TaskState(7).String(); s != "TaskState(7)" {
		t.Errorf("TaskState(7).String() = %q", s)
	}
	for _, bad := range []string{"7", "open", "", "DONE\n"} {
		s, err := patterns.ParseTaskState(bad)
		if s != patterns.Invalid || !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), strconv.Quote(bad)) {
			t.Errorf("ParseTaskState(%q) = %v, %v; want INVALID and ErrInvalid naming it", bad, s, err)
		}
	}
}

// batchTake checks the order and the states NextTask takes, on one worker
// (so the order is known): InitState, ignore flags, SetTaskState and
// TaskState; with a Dir also that the file wins over memory.
func batchTake(c *runtime.Comm, ws, root int, dir string) error {
	const n = 8
	init := []patterns.TaskState{
		patterns.Done, patterns.Open, patterns.Failed, patterns.Running,
		patterns.Open, patterns.Done, patterns.Failed, patterns.Open,
	}
	cfg := patterns.BatchConfig{Root: root, InitState: init}
	if dir != "" {
		cfg.Dir, cfg.Names = dir, batchNames(n)
	}
	b, err := patterns.NewBatch(c, ws, n, cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	for i, s := range init {
		if got, err := b.TaskState(i); got != s || err != nil {
			return fmt.Errorf("task %d: %v, %v; want %v", i, got, err, s)
		}
	}
	next := func(want int, also ...patterns.TaskState) error {
		task, ok, err := b.NextTask(also...)
		if err != nil {
			return err
		}
		if want < 0 && ok || want >= 0 && (!ok || task != want) {
			return fmt.Errorf("NextTask(%v) = %d, %v; want %d", also, task, ok, want)
		}
		if ok {
			if s, err := b.TaskState(task); s != patterns.Running || err != nil {
				return fmt.Errorf("task %d taken is %v, %v", task, s, err)
			}
		}
		return nil
	}
	steps := []struct {
		want int
		also []patterns.TaskState
	}{
		{1, nil},
		{4, []patterns.TaskState{patterns.Open}},
		{7, nil},
		{-1, nil},
		{2, []patterns.TaskState{patterns.Failed}},
		{6, []patterns.TaskState{patterns.Failed}},
		{-1, []patterns.TaskState{patterns.Failed}},
		{0, []patterns.TaskState{patterns.Done}},
		{0, []patterns.TaskState{patterns.Running}}, // the first running one
		{5, []patterns.TaskState{patterns.Done, patterns.Failed}},
		{-1, []patterns.TaskState{patterns.Done, patterns.Failed}},
	}
	for i, st := range steps {
		if err := next(st.want, st.also...); err != nil {
			return fmt.Errorf("step %d: %w", i, err)
		}
	}
	// Every task is running now; put one back, fail another.
	if b.WorkerRank() == 0 {
		if err := b.SetTaskState(3, patterns.Open); err != nil {
			return err
		}
		if err := b.SetTaskState(4, patterns.Failed); err != nil {
			return err
		}
	}
	if err := next(3); err != nil {
		return err
	}
	if err := next(4, patterns.Failed); err != nil {
		return err
	}
	if dir == "" {
		return nil
	}
	// The file wins over memory: a state edited in a file takes effect.
	if err := c.Barrier(); err != nil {
		return err
	}
	if c.Rank() == 0 {
		if err := os.WriteFile(filepath.Join(dir, "task_006", "state"), []byte("OPEN\n"), 0o666); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "task_002", "state"), []byte("DONE\n"), 0o666); err != nil {
			return err
		}
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	if s, err := b.TaskState(2); s != patterns.Done || err != nil {
		return fmt.Errorf("task 2 after its file says DONE: %v, %v", s, err)
	}
	if err := next(6); err != nil {
		return err
	}
	if err := next(2, patterns.Done); err != nil {
		return err
	}
	return next(-1)
}

func TestBatchTake(t *testing.T) {
	for _, withDir := range []bool{false, true} {
		suffix := ""
		if withDir {
			suffix = "-dir"
		}
		dir := func(t *testing.T) string {
			if withDir {
				return filepath.Join(t.TempDir(), "tasks")
			}
			return ""
		}
		t.Run("serial"+suffix, func(t *testing.T) {
			if err := batchTake(nil, 1, 0, dir(t)); err != nil {
				t.Fatal(err)
			}
		})
		// One worker of two ranks on two nodes, the states on the second:
		// every state operation of the worker is a message.
		t.Run("np2-ws2-nodes2-root1"+suffix, func(t *testing.T) {
			d := dir(t)
			cfg := ranktest.Config{Runtime: runtime.Config{LocalNodes: 2, Transports: []string{"self", "tcp"}}}
			cfg.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
				if err := batchTake(c, 2, 1, d); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// batchBadCase is a NewBatch at np 4 where one rank (or every rank) gets
// something wrong; want is in the words every rank returns.
type batchBadCase struct {
	name string
	args func(me int, dir, existing string) (ws, nTask int, cfg patterns.BatchConfig)
	want string
}

func batchGood(me int, dir string) (int, int, patterns.BatchConfig) {
	return 2, batchTasks, patterns.BatchConfig{Dir: dir, Names: batchNames(batchTasks)}
}

func batchStates(n int, s patterns.TaskState) []patterns.TaskState {
	return slices.Repeat([]patterns.TaskState{s}, n)
}

var batchBadCases = []batchBadCase{
	{"ws-divides", func(me int, dir, _ string) (int, int, patterns.BatchConfig) {
		ws, n, cfg := batchGood(me, dir)
		if me == 2 {
			ws = 3
		}
		return ws, n, cfg
	}, "workerSize 3 does not divide the communicator's size 4"},
	{"ws-zero", func(me int, dir, _ string) (int, int, patterns.BatchConfig) {
		ws, n, cfg := batchGood(me, dir)
		if me == 1 {
			ws = 0
		}
		return ws, n, cfg
	}, "workerSize 0 is not positive"},
	{"ws-differs", func(me int, dir, _ string) (int, int, patterns.BatchConfig) {
		ws, n, cfg := batchGood(me, dir)
		if me == 3 {
			ws = 4
		}
		return ws, n, cfg
	}, "workerSize differs between ranks: rank 0 passed 2, rank 3 passed 4"},
	{"ntask-negative", func(me int, dir, _ string) (int, int, patterns.BatchConfig) {
		if me == 2 {
			return 2, -1, patterns.BatchConfig{}
		}
		return 2, 5, patterns.BatchConfig{}
	}, "nTask -1 is negative"},
	{"ntask-differs", func(me int, dir, _ string) (int, int, patterns.BatchConfig) {
		if me == 1 {
			return 2, 4, patterns.BatchConfig{}
		}
		return 2, 5, patterns.BatchConfig{}
	}, "nTask differs between ranks: rank 0 passed 5, rank 1 passed 4"},
	{"root-range", func(me int, dir, _ string) (int, int, patterns.BatchConfig) {
		ws, n, cfg := batchGood(me, dir)
		if me == 2 {
			cfg.Root = 4
		}
		return ws, n, cfg
	}, "Root 4 is out of range [0,4)"},
	{"root-negative", func(me int, dir, _ string) (int, int, patterns.BatchConfig) {
		ws, n, cfg := batchGood(me, dir)
		cfg.Root = -1
		return ws, n, cfg
	}, "Root -1 is out of range [0,4)"},
	{"root-differs", func(me int, dir, _ string) (int, int, patterns.BatchConfig) {
		ws, n, cfg := batchGood(me, dir)
		if me == 1 {
			cfg.Root = 1
		}
		return ws, n, cfg
	}, "Root differs between ranks: rank 0 passed 0, rank 1 passed 1"},
	{"dir-without-names", func(me int, dir, _ string) (int, int, patterns.BatchConfig) {
		if me == 2 {
			return 2, 5, patterns.BatchConfig{Dir: dir}
		}
		return 2, 5, patterns.BatchConfig{}
	}, "needs Names, one per task"},
	{"names-short", func(me int, dir, _ string) (int, int, patterns.BatchConfig) {
		ws, n, cfg := batchGood(me, dir)
		if me == 1 {
			cfg.Names = cfg.Names[:n-1]
		}
		return ws, n, cfg
	}, "24 Names for 25 tasks"},
	{"names-repeated", func(me int, dir, _ string) (int, int, patterns.BatchConfig) {
		ws, n, cfg := batchGood(me, dir)
		cfg.Names[7] = cfg.Names[3]
		return ws, n, cfg
	}, `tasks 3 and 7 have the same name "task_003"`},
	{"name-path", func(me int, dir, _ string) (int, int, patterns.BatchConfig) {
		ws, n, cfg := batchGood(me, dir)
		if me == 3 {
			cfg.Names[5] = "../x"
		}
		return ws, n, cfg
	}, `task 5's name "../x" is not a single path element`},
	{"names-differ", func(me int, dir, _ string) (int, int, patterns.BatchConfig) {
		ws, n, cfg := batchGood(me, dir)
		if me == 2 {
			cfg.Names[24] = "other"
		}
		return ws, n, cfg
	}, "Names differs between ranks"},
	{"dir-differs", func(me int, dir, _ string) (int, int, patterns.BatchConfig) {
		ws, n, cfg := batchGood(me, dir)
		if me == 1 {
			cfg.Dir += "2"
		}
		return ws, n, cfg
	}, "Dir differs between ranks"},
	{"init-short", func(me int, dir, _ string) (int, int, patterns.BatchConfig) {
		cfg := patterns.BatchConfig{InitState: batchStates(5, patterns.Open)}
		if me == 2 {
			cfg.InitState = cfg.InitState[:4]
		}
		return 2, 5, cfg
	}, "4 states in InitState for 5 tasks"},
	{"init-bad-state", func(me int, dir, _ string) (int, int, patterns.BatchConfig) {
		cfg := patterns.BatchConfig{InitState: batchStates(5, patterns.Open)}
		if me == 0 {
			cfg.InitState[3] = patterns.TaskState(9)
		}
		return 2, 5, cfg
	}, "task 3's initial state TaskState(9) is not a state"},
	{"init-invalid", func(me int, dir, _ string) (int, int, patterns.BatchConfig) {
		cfg := patterns.BatchConfig{InitState: batchStates(5, patterns.Open)}
		if me == 3 {
			cfg.InitState[0] = patterns.Invalid
		}
		return 2, 5, cfg
	}, "task 0's initial state INVALID is not a state"},
	{"init-differs", func(me int, dir, _ string) (int, int, patterns.BatchConfig) {
		cfg := patterns.BatchConfig{InitState: batchStates(5, patterns.Open)}
		if me == 3 {
			cfg.InitState[1] = patterns.Done
		}
		return 2, 5, cfg
	}, "InitState differs between ranks"},
	// Only the root can see this one: Dir exists there.
	{"init-with-existing-dir", func(me int, _, existing string) (int, int, patterns.BatchConfig) {
		ws, n, cfg := batchGood(me, existing)
		cfg.InitState = batchStates(n, patterns.Open)
		cfg.Root = 1
		return ws, n, cfg
	}, "exists, so the initial states come from it: InitState must be nil"},
}

// Bad input on one rank (or on all): the same ErrInvalid, with the same
// words, on every rank; nothing is left locked or open, and a good batch
// follows on the same directory.
func TestBatchBadNew(t *testing.T) {
	const np = 4
	for _, l := range []struct {
		name string
		cfg  runtime.Config
	}{
		{"np4", runtime.Config{}},
		{"np4-nodes2", runtime.Config{LocalNodes: 2, Transports: []string{"self", "shm", "tcp"}}},
	} {
		t.Run(l.name, func(t *testing.T) {
			errs := newRankErrs(np)
			dir := filepath.Join(t.TempDir(), "tasks")
			existing := t.TempDir()
			cfg := ranktest.Config{Runtime: l.cfg}
			cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
				for _, bc := range batchBadCases {
					ws, n, bcfg := bc.args(c.Rank(), dir, existing)
					b, err := patterns.NewBatch(c, ws, n, bcfg)
					if err == nil {
						b.Close()
					}
					errs.put(bc.name, c.Rank(), err)
				}
				if err := batchRun(c, 2, 0, dir); err != nil {
					t.Fatalf("after the bad cases: %v", err)
				}
			})
			words := errs.check(t, "NewBatch", runtime.ErrInvalid)
			for _, bc := range batchBadCases {
				if !strings.Contains(words[bc.name], bc.want) {
					t.Errorf("%s: %q does not say %q", bc.name, words[bc.name], bc.want)
				}
			}
			if testing.Verbose() {
				for _, bc := range batchBadCases {
					t.Logf("%s: %s", bc.name, words[bc.name])
				}
			}
		})
	}
}

// Bad arguments to NextTask are the same error on every rank of the
// worker, which takes nothing; SetTaskState and TaskState check theirs.
func TestBatchBadCalls(t *testing.T) {
	const np = 4
	errs := newRankErrs(np)
	ranktest.Run(t, np, func(t testing.TB, c *runtime.Comm) {
		b, err := patterns.NewBatch(c, 2, 4, patterns.BatchConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		me := c.Rank()
		// Worker 0's ranks differ; worker 1's rank 3 passes no state.
		var also []patterns.TaskState
		switch me {
		case 1:
			also = []patterns.TaskState{patterns.Failed}
		case 3:
			also = []patterns.TaskState{patterns.Done, patterns.Invalid}
		}
		_, _, err = b.NextTask(also...)
		errs.put("next", me, err)
		// Nothing was taken: the workers take tasks 0 and 1 now.
		task, ok, err := b.NextTask()
		if err != nil || !ok || task > 1 {
			t.Fatalf("NextTask after the bad ones: %d, %v, %v", task, ok, err)
		}
		for _, bad := range []struct {
			name string
			err  func() error
		}{
			{"set-task-range", func() error { return b.SetTaskState(4, patterns.Done) }},
			{"set-task-negative", func() error { return b.SetTaskState(-1, patterns.Done) }},
			{"set-invalid", func() error { return b.SetTaskState(0, patterns.Invalid) }},
			{"set-unknown", func() error { return b.SetTaskState(0, 4) }},
			{"get-range", func() error { _, err := b.TaskState(4); return err }},
		} {
			if err := bad.err(); !errors.Is(err, runtime.ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", bad.name, err)
			}
		}
		if err := c.Barrier(); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if s, err := b.TaskState(i); s != patterns.Running || err != nil {
				t.Errorf("task %d: %v, %v; want RUNNING", i, s, err)
			}
		}
		for i := 2; i < 4; i++ {
			if s, err := b.TaskState(i); s != patterns.Open || err != nil {
				t.Errorf("task %d: %v, %v; want OPEN", i, s, err)
			}
		}
	})
	// The words are the same within a worker (they name the worker's
	// ranks).
	for w, want := range []string{
		"the states to take differs between ranks: rank 0 passed OPEN, rank 1 passed OPEN|FAILED",
		"NextTask takes tasks that are OPEN, RUNNING, DONE or FAILED, not INVALID",
	} {
		words := errs.check(t, "NextTask", runtime.ErrInvalid, 2*w, 2*w+1)
		if !strings.Contains(words["next"], want) {
			t.Errorf("worker %d says %q, want %q", w, words["next"], want)
		}
	}
}

// One Batch at a time per directory: a second NewBatch on a directory in
// use fails on every rank (the words of the root's error); after Close
// the directory is free.
func TestBatchDirInUse(t *testing.T) {
	const np = 2
	errs := newRankErrs(np)
	dir := filepath.Join(t.TempDir(), "tasks")
	names := batchNames(3)
	ranktest.Run(t, np, func(t testing.TB, c *runtime.Comm) {
		cfg := patterns.BatchConfig{Dir: dir, Names: names, Root: 1}
		b1, err := patterns.NewBatch(c, 1, 3, cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = patterns.NewBatch(c, 1, 3, cfg)
		errs.put("in-use", c.Rank(), err)
		if err := b1.Close(); err != nil {
			t.Fatal(err)
		}
		b3, err := patterns.NewBatch(c, 1, 3, cfg)
		if err != nil {
			t.Fatalf("NewBatch after Close: %v", err)
		}
		if err := b3.Close(); err != nil {
			t.Fatal(err)
		}
	})
	words := errs.check(t, "NewBatch", nil)
	if w := words["in-use"]; !strings.Contains(w, "is in use by another Batch") || errors.Is(errs.errs["in-use"][0], runtime.ErrInvalid) {
		t.Errorf("second NewBatch: %q (%v), want an error saying the directory is in use", w, errs.errs["in-use"][0])
	}
}

// A batch closed with tasks running, and a new one on its directory: the
// running tasks are open again, the others keep their states (the restart
// rule, without processes).
func TestBatchReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tasks")
	names := batchNames(6)
	b, err := patterns.NewBatch(nil, 1, 6, patterns.BatchConfig{Dir: dir, Names: names,
		InitState: []patterns.TaskState{patterns.Open, patterns.Open, patterns.Failed, patterns.Open, patterns.Open, patterns.Open}})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 { // takes 0, 1, 3, 4
		if _, ok, err := b.NextTask(); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if err := b.SetTaskState(1, patterns.Done); err != nil {
		t.Fatal(err)
	}
	if err := b.SetTaskState(3, patterns.Failed); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, names[5], "state")) // a lost file is open
	// InitState is refused now that the directory exists.
	if _, err := patterns.NewBatch(nil, 1, 6, patterns.BatchConfig{Dir: dir, Names: names, InitState: batchStates(6, patterns.Done)}); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("InitState with an existing Dir: %v, want ErrInvalid", err)
	}
	b, err = patterns.NewBatch(nil, 1, 6, patterns.BatchConfig{Dir: dir, Names: names})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	want := []patterns.TaskState{patterns.Open, patterns.Done, patterns.Failed, patterns.Failed, patterns.Open, patterns.Open}
	for i, w := range want {
		if s, err := b.TaskState(i); s != w || err != nil {
			t.Errorf("task %d after reopening: %v, %v; want %v", i, s, err, w)
		}
		data, _ := os.ReadFile(filepath.Join(dir, names[i], "state"))
		if string(data) != w.String()+"\n" {
			t.Errorf("task %d's file after reopening: %q, want %q", i, data, w.String()+"\n")
		}
	}
	// A file that holds no state is an error of the call that reads it.
	if err := os.WriteFile(filepath.Join(dir, names[2], "state"), []byte("MAYBE\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := b.TaskState(2); err == nil || !strings.Contains(err.Error(), `holds "MAYBE", not a state`) {
		t.Errorf("TaskState of a corrupt file: %v", err)
	}
	if task, ok, err := b.NextTask(); task != 0 || !ok || err != nil {
		t.Fatalf("NextTask: %d, %v, %v; want 0", task, ok, err)
	}
	// The next one reads task 2's file on its way to task 4.
	if task, ok, err := b.NextTask(); err == nil || ok || task != -1 || !strings.Contains(err.Error(), "not a state") {
		t.Errorf("NextTask over a corrupt file: %d, %v, %v", task, ok, err)
	}
	if s, err := b.TaskState(4); s != patterns.Open || err != nil {
		t.Errorf("task 4 after the failed NextTask: %v, %v; want OPEN", s, err)
	}
}

// The program of TestBatchKill. Every rank 0 of a worker appends a line,
// "phase P rank R", to its task's file "work" and marks the task Done; the
// victim (a worker's rank 0) does so for two tasks and, at its third
// (its line marked "victim"), kills itself with SIGKILL: after marking it
// Done ("between" tasks) or after appending the line but before marking
// ("during" a task). The other workers pause between tasks, so the victim
// gets its three.
func init() {
	ranktest.Register("patterns-batch-kill", func(c *runtime.Comm) error {
		dir, phase, mode := os.Getenv("BATCH_DIR"), os.Getenv("BATCH_PHASE"), os.Getenv("BATCH_MODE")
		ws, err := strconv.Atoi(os.Getenv("BATCH_WS"))
		if err != nil {
			return err
		}
		victim, err := strconv.Atoi(os.Getenv("BATCH_VICTIM"))
		if err != nil {
			return err
		}
		names := batchNames(batchTasks)
		b, err := patterns.NewBatch(c, ws, batchTasks, patterns.BatchConfig{Dir: dir, Names: names})
		if err != nil {
			return err
		}
		kill := func() {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		for done := 0; ; done++ {
			task, ok, err := b.NextTask()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			if err := b.WorkerComm().Barrier(); err != nil {
				return err
			}
			if b.WorkerRank() == 0 {
				isVictim := c.Rank() == victim && done == 2
				line := fmt.Sprintf("phase %s rank %d", phase, c.Rank())
				if isVictim {
					line += " victim"
				}
				f, err := os.OpenFile(filepath.Join(dir, names[task], "work"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
				if err != nil {
					return err
				}
				_, err = f.WriteString(line + "\n")
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return err
				}
				if isVictim && mode == "during" {
					kill()
				}
				if err := b.SetTaskState(task, patterns.Done); err != nil {
					return err
				}
				if isVictim {
					kill()
				}
			}
			if c.Rank()/ws != victim/ws {
				time.Sleep(4 * time.Millisecond)
			}
		}
		return b.Close()
	})
}

// batchSnapshot reads every task's state and work lines.
func batchSnapshot(t *testing.T, dir string) (states []string, lines [][]string) {
	t.Helper()
	for _, name := range batchNames(batchTasks) {
		b, err := os.ReadFile(filepath.Join(dir, name, "state"))
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, strings.TrimSpace(string(b)))
		w, err := os.ReadFile(filepath.Join(dir, name, "work"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		var ls []string
		if len(w) > 0 {
			ls = strings.Split(strings.TrimSuffix(string(w), "\n"), "\n")
		}
		lines = append(lines, ls)
	}
	return states, lines
}

// A job killed half way (SIGKILL of one rank, the root in one case) and
// started again on the same directory, with another layout: every task's
// work is completed exactly once in all. Precisely: after the kill, a task
// is DONE with one line of the first job, OPEN with none, or RUNNING (at
// most one per worker: the tasks in progress) with at most one; after the
// second job every task is DONE, the DONE ones were not run again, and
// every other has exactly one line of the second job. The victim's own
// task, killed after it was marked ("between" tasks), ran once in all;
// killed after its work but before it was marked ("during"), twice.
func TestBatchKill(t *testing.T) {
	if testing.Short() {
		t.Skip("process ranks")
	}
	for _, tc := range []struct {
		name           string
		mode           string
		np, ws, victim int
		nodes          int
		np2, ws2       int // the second job
	}{
		{"between-root", "between", 3, 1, 0, 1, 2, 2},
		{"during-nodes2", "during", 4, 2, 2, 2, 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tasks")
			env := []string{"BATCH_DIR=" + dir, "BATCH_MODE=" + tc.mode, "BATCH_VICTIM=" + strconv.Itoa(tc.victim)}
			cfg := ranktest.SpawnConfig{Nodes: tc.nodes, Timeout: 30 * time.Second,
				Env: append([]string{"BATCH_PHASE=1", "BATCH_WS=" + strconv.Itoa(tc.ws)}, env...)}
			out, res := cfg.SpawnResult(t, tc.np, "patterns-batch-kill")
			if res.ExitCode() == 0 {
				t.Fatalf("the first job succeeded with a rank killed:\n%s", out)
			}
			states1, lines1 := batchSnapshot(t, dir)
			victimTask, running := -1, 0
			for task, s := range states1 {
				ls := lines1[task]
				for _, l := range ls {
					if !strings.HasPrefix(l, "phase 1 ") {
						t.Errorf("task %d after the first job: line %q", task, l)
					}
					if strings.HasSuffix(l, " victim") {
						victimTask = task
					}
				}
				switch {
				case s == "DONE" && len(ls) == 1, s == "OPEN" && len(ls) == 0:
				case s == "RUNNING" && len(ls) <= 1:
					running++
				default:
					t.Errorf("task %d after the first job: %s with lines %q", task, s, ls)
				}
			}
			if nw := tc.np / tc.ws; running > nw {
				t.Errorf("%d tasks RUNNING after the kill, more than the %d workers", running, nw)
			}
			want := map[string]string{"between": "DONE", "during": "RUNNING"}[tc.mode]
			if victimTask < 0 || states1[victimTask] != want {
				t.Fatalf("the victim's task (%d) is not %s after the kill: %q\n%s", victimTask, want, states1, out)
			}
			t.Logf("after the kill: %d DONE, %d RUNNING, victim's task %d", strings.Count(strings.Join(states1, " "), "DONE"), running, victimTask)

			cfg2 := ranktest.SpawnConfig{Timeout: 30 * time.Second,
				Env: append([]string{"BATCH_PHASE=2", "BATCH_WS=" + strconv.Itoa(tc.ws2)}, env[:2]...)}
			cfg2.Env = append(cfg2.Env, "BATCH_VICTIM=-1")
			cfg2.Spawn(t, tc.np2, "patterns-batch-kill")
			states2, lines2 := batchSnapshot(t, dir)
			for task, s := range states2 {
				if s != "DONE" {
					t.Errorf("task %d after the second job: %s", task, s)
				}
				ls := lines2[task]
				if !slices.Equal(ls[:min(len(lines1[task]), len(ls))], lines1[task]) {
					t.Errorf("task %d: the first job's lines %q became %q", task, lines1[task], ls)
					continue
				}
				again := ls[len(lines1[task]):]
				switch states1[task] {
				case "DONE":
					if len(again) != 0 {
						t.Errorf("task %d, DONE before, ran again: %q", task, again)
					}
				default:
					if len(again) != 1 || !strings.HasPrefix(again[0], "phase 2 ") {
						t.Errorf("task %d, %s before, has the second job's lines %q, want one", task, states1[task], again)
					}
				}
			}
			if want := map[string]int{"between": 1, "during": 2}[tc.mode]; len(lines2[victimTask]) != want {
				t.Errorf("the victim's task %d has lines %q, want %d", victimTask, lines2[victimTask], want)
			}
		})
	}
}
