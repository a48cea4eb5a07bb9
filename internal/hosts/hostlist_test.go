package hosts

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseHostlist(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want string // space-separated
	}{
		{"node1", "node1"},
		{"node[01-04,7]", "node01 node02 node03 node04 node7"},
		{"n1,n[3-5],gpu[01-02]", "n1 n3 n4 n5 gpu01 gpu02"},
		{"node[8-10]", "node8 node9 node10"},
		{"node[08-10]", "node08 node09 node10"},
		{"node[008-010]", "node008 node009 node010"},
		{"node[098-101]", "node098 node099 node100 node101"},
		{"node[9-010]", "node9 node10"}, // the width comes from the low end, as in Slurm
		{"node[0]", "node0"},
		{"node[000]", "node000"},
		{"tux[0-2,12,20-21]", "tux0 tux1 tux2 tux12 tux20 tux21"},
		{"node[3,1,2]", "node3 node1 node2"}, // kept in the order given
		{"node[1-2,1]", "node1 node2 node1"}, // not deduplicated
		{"a[1-2]b[3-4]", "a1b3 a1b4 a2b3 a2b4"},
		{"rack[0-1]_blade[0-1]", "rack0_blade0 rack0_blade1 rack1_blade0 rack1_blade1"},
		{"r[1-2]n[01-02]x[5]", "r1n01x5 r1n02x5 r2n01x5 r2n02x5"},
		{"node[1-2]-ib", "node1-ib node2-ib"},
		{"node[1-2].cluster.org", "node1.cluster.org node2.cluster.org"},
		{"[1-3]", "1 2 3"},
		{"a,b c\td\ne", "a b c d e"},
		{",a,,b,", "a b"}, // empty elements are skipped, as Slurm does
		{"a[1-2], b[3]", "a1 a2 b3"},
		{"node-[1-2],node-3", "node-1 node-2 node-3"},
		{"10.0.0.[1-3]", "10.0.0.1 10.0.0.2 10.0.0.3"},
	} {
		got, err := ParseHostlist(tc.expr)
		if err != nil {
			t.Errorf("ParseHostlist(%q): %v", tc.expr, err)
			continue
		}
		if want := strings.Fields(tc.want); !reflect.DeepEqual(got, want) {
			t.Errorf("ParseHostlist(%q) = %q, want %q", tc.expr, got, want)
		}
	}
}

func TestParseHostlistErrors(t *testing.T) {
	for _, tc := range []struct {
		expr, text, msg string
	}{
		{"", "", "no host names"},
		{" , ", " , ", "no host names"},
		{"node[1-3", "node[1-3", "bracket opened at offset 4 is not closed"},
		{"node1-3]", "node1-3]", "']' at offset 7 closes no bracket"},
		{"a[1[2]]", "a[1[2]]", "'[' at offset 3 inside the bracket opened at offset 1"},
		{"node[]", "node[]", "empty brackets"},
		{"node[1,,2]", "node[1,,2]", "empty item in brackets"},
		{"node[1,]", "node[1,]", "empty item in brackets"},
		{"node[-2]", "node[-2]", `range "-2" has an empty end`},
		{"node[2-]", "node[2-]", `range "2-" has an empty end`},
		{"node[1--2]", "node[1--2]", `"1--2" in brackets is not a number`},
		{"node[1-2-3]", "node[1-2-3]", `"1-2-3" in brackets is not a number`},
		{"node[5-3]", "node[5-3]", `range "5-3" runs backwards`},
		{"node[a-c]", "node[a-c]", `"a-c" in brackets is not a number`},
		{"bgl[123x456]", "bgl[123x456]", `"123x456" in brackets is not a number`},
		{"node[ 1]", "node[ 1]", `" 1" in brackets is not a number`},
		{"node[1234567890123456789]", "node[1234567890123456789]", "is too long"},
		{"node[0-65536]", "node[0-65536]", "has more than 65536 numbers"},
		{"a[0-300]b[0-300]", "a[0-300]b[0-300]", "more than 65536 host names"},
		{"ok,-[1-2]", "-[1-2]", "starts with '-'"},
		{"ok,n;[1]", "n;[1]", `the character ';'`},
	} {
		_, err := ParseHostlist(tc.expr)
		if err == nil {
			t.Errorf("ParseHostlist(%q) succeeded", tc.expr)
			continue
		}
		checkErr(t, err, "hostlist", 0, tc.text, tc.msg)
	}
}

func TestParseHostlistLimit(t *testing.T) {
	got, err := ParseHostlist("n[0-65535]")
	if err != nil || len(got) != MaxHosts || got[MaxHosts-1] != "n65535" {
		t.Fatalf("n[0-65535]: %d names, %v", len(got), err)
	}
	// The limit is on the whole expression, not per element.
	_, err = ParseHostlist("n[0-65535],m")
	checkErr(t, err, "hostlist", 0, "m", "more than 65536 host names")
}

func TestParseTaskCounts(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want []int
	}{
		{"4", []int{4}},
		{"2(x3),1", []int{2, 2, 2, 1}},
		{"72(x2),36", []int{72, 72, 36}},
		{"1,2,3", []int{1, 2, 3}},
		{"5(x1)", []int{5}},
		{"0,1(x2)", []int{0, 1, 1}},
		{"2(x2),3(x2)", []int{2, 2, 3, 3}},
	} {
		got, err := ParseTaskCounts(tc.s)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseTaskCounts(%q) = %v, %v; want %v", tc.s, got, err, tc.want)
		}
	}
}

func TestParseTaskCountsErrors(t *testing.T) {
	for _, tc := range []struct {
		s, text, msg string
	}{
		{"", "", "empty list"},
		{"2,", "", "count is empty"},
		{"2,,1", "", "count is empty"},
		{"x", "x", `count "x" is not a whole number`},
		{"-1", "-1", `count "-1" is not a whole number`},
		{" 2", " 2", `count " 2" is not a whole number`},
		{"2(x0)", "2(x0)", "repeat 0 is less than 1"},
		{"2(3)", "2(3)", "a repeat must be written n(xk)"},
		{"2(x3", "2(x3", "a repeat must be written n(xk)"},
		{"2(x3)4", "2(x3)4", "a repeat must be written n(xk)"},
		{"2(xx)", "2(xx)", `repeat "x" is not a whole number`},
		{"(x3)", "(x3)", "count is empty"},
		{"2(x65537)", "2(x65537)", "expands to more than 65536 nodes"},
		{"1(x65536),1", "1", "expands to more than 65536 nodes"},
		{"1048577", "1048577", "count 1048577 is more than 1048576"},
	} {
		_, err := ParseTaskCounts(tc.s)
		if err == nil {
			t.Errorf("ParseTaskCounts(%q) succeeded", tc.s)
			continue
		}
		checkErr(t, err, "counts", 0, tc.text, tc.msg)
	}
}

// FuzzParseHostlist checks that the parser never panics or runs away, and
// that what it accepts is a list of plain names that parses to itself.
func FuzzParseHostlist(f *testing.F) {
	for _, s := range []string{
		"node[01-04,7]", "n1,n[3-5],gpu[01-02]", "a[1-2]b[3-4]", "node[1-2]-ib",
		"node[098-101]", "x", ",a,,b,", "node[1-3", "a[1[2]]", "node[]", "node[5-3]",
		"bgl[123x456]", "n[0-65535]", "a[0-300]b[0-300]", "-[1]", "a b\tc\nd",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		names, err := ParseHostlist(expr)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is %T, not *Error", err, err)
			}
			return
		}
		if len(names) == 0 || len(names) > MaxHosts {
			t.Fatalf("%d names", len(names))
		}
		for _, n := range names {
			if err := checkName(n); err != nil {
				t.Fatalf("accepted name: %v", err)
			}
		}
		if !strings.ContainsAny(expr, "[]") {
			// Without brackets the expression is just its elements.
			want := strings.FieldsFunc(expr, func(r rune) bool { return r < 0x80 && isSep(byte(r)) })
			if !reflect.DeepEqual(names, want) {
				t.Fatalf("ParseHostlist(%q) = %q, want %q", expr, names, want)
			}
		}
		again, err := ParseHostlist(strings.Join(names, ","))
		if err != nil || !reflect.DeepEqual(again, names) {
			t.Fatalf("names %q do not parse to themselves: %q, %v", names, again, err)
		}
	})
}

// TestParseHostlistNaive compares bracket expansion with a direct
// construction from random ranges.
func TestParseHostlistNaive(t *testing.T) {
	for lo := range 12 {
		for hi := lo; hi < 12; hi++ {
			for width := 1; width <= 3; width++ {
				expr := fmt.Sprintf("n[%0*d-%0*d]", width, lo, width, hi)
				var want []string
				for i := lo; i <= hi; i++ {
					want = append(want, fmt.Sprintf("n%0*d", width, i))
				}
				got, err := ParseHostlist(expr)
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("ParseHostlist(%q) = %q, %v; want %q", expr, got, err, want)
				}
			}
		}
	}
}
