package hosts

import (
	"errors"
	"strings"
	"testing"
)

func TestDisplayMap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hosts []Host
		np    int
		opt   Options
		want  string
	}{
		{"by node", []Host{h("node01", 2), {Name: "node02", Slots: 2, MaxSlots: 4}, h("node03", 2)}, 6, Options{MapBy: MapByNode}, `
JOB MAP: 6 ranks on 3 hosts (map-by node)
HOST    SLOTS    RANKS  RANK LIST
node01  2        2      0,3
node02  2 max 4  2      1,4
node03  2        2      2,5
`},
		{"block, unused host", []Host{h("a", 4), h("bb", 4), h("c", 1)}, 6, Options{}, `
JOB MAP: 6 ranks on 2 of 3 hosts (map-by slot)
HOST  SLOTS  RANKS  RANK LIST
a     4      4      0-3
bb    4      2      4-5
c     1      0      -
`},
		{"oversubscribed", []Host{h("a", 2), h("b", 1)}, 7, Options{PPN: 2, Oversubscribe: true}, `
JOB MAP: 7 ranks on 2 hosts (map-by slot, ppn 2, oversubscribe)
HOST  SLOTS  RANKS  RANK LIST
a     2      4      0-1,4-5  (oversubscribed)
b     1      3      2-3,6  (oversubscribed)
`},
		{"one rank", []Host{h("localhost", 1)}, 1, Options{}, `
JOB MAP: 1 rank on 1 host (map-by slot)
HOST       SLOTS  RANKS  RANK LIST
localhost  1      1      0
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Place(tc.hosts, tc.np, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if err := DisplayMap(&b, m); err != nil {
				t.Fatal(err)
			}
			if want := strings.TrimPrefix(tc.want, "\n"); b.String() != want {
				t.Errorf("DisplayMap wrote\n%s\nwant\n%s", b.String(), want)
			}
		})
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

func TestDisplayMapWriteError(t *testing.T) {
	m, err := Place([]Host{h("a", 1)}, 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for n := range 2 { // the title, then the table
		if err := DisplayMap(&failWriter{n: n}, m); err == nil || err.Error() != "disk full" {
			t.Errorf("write %d failing: DisplayMap = %v, want the write error", n, err)
		}
	}
}

func TestRankList(t *testing.T) {
	for _, tc := range []struct {
		ranks []int
		want  string
	}{
		{nil, "-"},
		{[]int{3}, "3"},
		{[]int{0, 1}, "0-1"},
		{[]int{0, 2, 4}, "0,2,4"},
		{[]int{0, 1, 2, 3, 8, 10, 11}, "0-3,8,10-11"},
	} {
		if got := rankList(tc.ranks); got != tc.want {
			t.Errorf("rankList(%v) = %q, want %q", tc.ranks, got, tc.want)
		}
	}
}
