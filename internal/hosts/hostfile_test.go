package hosts

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseHostfile(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []Host
	}{
		{"bare", "h1\nh2\n", []Host{h("h1", 1), h("h2", 1)}},
		{"hydra", "h1:4\nh2:2", []Host{h("h1", 4), h("h2", 2)}},
		{"openmpi", "h1 slots=4\nh2 slots=2\n", []Host{h("h1", 4), h("h2", 2)}},
		{"max", "h1 slots=2 max_slots=4\n", []Host{{Name: "h1", Slots: 2, MaxSlots: 4}}},
		{"max first", "h1 max_slots=4 slots=2\n", []Host{{Name: "h1", Slots: 2, MaxSlots: 4}}},
		{"max dash", "h1 slots=2 max-slots=4\n", []Host{{Name: "h1", Slots: 2, MaxSlots: 4}}},
		{"max only", "h1 max_slots=3\n", []Host{{Name: "h1", Slots: 1, MaxSlots: 3}}},
		{"hydra with max", "h1:2 max_slots=2\n", []Host{{Name: "h1", Slots: 2, MaxSlots: 2}}},
		{"blanks around =", "h1 slots = 3\nh2 max_slots= 4 slots =2", []Host{h("h1", 3), {Name: "h2", Slots: 2, MaxSlots: 4}}},
		{"mixed", "h1:2\nh2 slots=3\nh3\n", []Host{h("h1", 2), h("h2", 3), h("h3", 1)}},
		{"comments and blanks",
			"# cluster\n\n   \nh1 slots=2   # two cores\n\t# indented comment\nh2#no space\n#h3\n",
			[]Host{h("h1", 2), h("h2", 1)}},
		{"repeats add", "h1\nh2:2\nh1 slots=3\n", []Host{h("h1", 4), h("h2", 2)}},
		{"repeats add max", "h1 slots=1 max_slots=2\nh1 slots=2 max_slots=3\n", []Host{{Name: "h1", Slots: 3, MaxSlots: 5}}},
		{"repeat without max drops max", "h1 slots=1 max_slots=2\nh1\n", []Host{h("h1", 2)}},
		{"repeat without max first", "h1\nh1 slots=1 max_slots=2\n", []Host{h("h1", 2)}},
		{"crlf", "h1:2\r\nh2 slots=1\r\n", []Host{h("h1", 2), h("h2", 1)}},
		{"no final newline", "h1 slots=5", []Host{h("h1", 5)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseHostfile(strings.NewReader(tc.file), "hf")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseHostfileErrors(t *testing.T) {
	for _, tc := range []struct {
		file string
		line int
		text string
		msg  string
	}{
		{"", 0, "", "no hosts in the file"},
		{"# only a comment\n\n", 0, "", "no hosts in the file"},
		{"h1\nh2 slots=0\n", 2, "h2 slots=0", "slots 0 is less than 1"},
		{"h1\n\nh2 slots=x # c\n", 3, "h2 slots=x # c", `slots "x" is not a whole number`},
		{"h1 slots=\n", 1, "h1 slots=", "slots is empty"},
		{"h1 slots=2 slots=3\n", 1, "h1 slots=2 slots=3", "slots is given twice"},
		{"h1 max_slots=2 max-slots=3\n", 1, "h1 max_slots=2 max-slots=3", "max_slots is given twice"},
		{"h1:2 slots=3\n", 1, "h1:2 slots=3", `both "h1:2" and slots= give the slot count`},
		{"h1 slots=4 max_slots=2\n", 1, "h1 slots=4 max_slots=2", "max_slots=2 is less than the 4 slots"},
		{"h1 max_slots=0\n", 1, "h1 max_slots=0", "max_slots 0 is less than 1"},
		{"h1 cpus=4\n", 1, "h1 cpus=4", `unknown key "cpus"`},
		{"h1 4\n", 1, "h1 4", `"4" is not key=value`},
		{"h1 slots = 3\th2\n", 1, "h1 slots = 3\th2", `"h2" is not key=value`},
		{"h1:0\n", 1, "h1:0", "slot count 0 is less than 1"},
		{"h1:two\n", 1, "h1:two", `slot count "two" is not a whole number`},
		{"h1\n-h2\n", 2, "-h2", "starts with '-'"},
		{"h1\nh2;rm\n", 2, "h2;rm", `the character ';'`},
		{"h1 slots=1048576\nh1\n", 2, "h1", "would have 1048577 slots"},
		{"=4\n", 1, "=4", `the character '='`},
	} {
		_, err := ParseHostfile(strings.NewReader(tc.file), "hf")
		if err == nil {
			t.Errorf("ParseHostfile(%q) succeeded", tc.file)
			continue
		}
		checkErr(t, err, "hostfile hf", tc.line, tc.text, tc.msg)
	}
}

func TestParseHostfileLongLine(t *testing.T) {
	file := "h1\nh2 " + strings.Repeat(" ", 70000) + "\n"
	_, err := ParseHostfile(strings.NewReader(file), "hf")
	if err == nil {
		t.Fatal("a 70 kB line was accepted")
	}
	checkErr(t, err, "hostfile hf", 2, "", "too long")
}

func TestReadHostfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(path, []byte("a slots=2\nb:3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadHostfile(path)
	if want := []Host{h("a", 2), h("b", 3)}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ReadHostfile = %v, %v; want %v", got, err, want)
	}

	if err := os.WriteFile(path, []byte("a\nb slots=-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ReadHostfile(path)
	checkErr(t, err, "hostfile "+path, 2, "b slots=-1", `slots "-1" is not a whole number`)
	if want := "hostfile " + path + `:2: "b slots=-1": `; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}

	_, err = ReadHostfile(filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("ReadHostfile(missing) = %v, want a not-exist error naming the file", err)
	}
}
