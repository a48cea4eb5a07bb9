package bootstrap

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func validEnv() map[string]string {
	return map[string]string{
		EnvJobID:     "job-1.a_B",
		EnvRank:      "2",
		EnvSize:      "4",
		EnvLocalRank: "0",
		EnvLocalSize: "2",
		EnvNode:      "host#1",
		EnvCoord:     "127.0.0.1:4000",
		EnvSecret:    strings.Repeat("ab", 32),
	}
}

func TestLookupUnset(t *testing.T) {
	env, err := Lookup(mapEnv(map[string]string{EnvSize: "4", "PMI_RANK": "1"}))
	if env != nil || err != nil {
		t.Fatalf("Lookup without %s = %v, %v; want nil, nil", EnvRank, env, err)
	}
}

func TestLookupValid(t *testing.T) {
	env, err := Lookup(mapEnv(validEnv()))
	if err != nil {
		t.Fatal(err)
	}
	want := &Env{
		JobID: "job-1.a_B", Rank: 2, Size: 4, LocalRank: 0, LocalSize: 2,
		Node: "host#1", Coord: "127.0.0.1:4000", Secret: bytes.Repeat([]byte{0xab}, 32),
		Bind: DefaultBind,
	}
	if !reflect.DeepEqual(env, want) {
		t.Fatalf("Lookup = %+v\nwant     %+v", env, want)
	}
}

func TestLookupOptional(t *testing.T) {
	m := validEnv()
	m[EnvBind] = "10.1.2.3"
	m[EnvTransports] = " self, tcp ,shm"
	env, err := Lookup(mapEnv(m))
	if err != nil {
		t.Fatal(err)
	}
	if env.Bind != "10.1.2.3" {
		t.Errorf("Bind = %q, want 10.1.2.3", env.Bind)
	}
	if want := []string{"self", "tcp", "shm"}; !reflect.DeepEqual(env.Transports, want) {
		t.Errorf("Transports = %q, want %q", env.Transports, want)
	}
}

func TestLookupErrors(t *testing.T) {
	tests := []struct {
		name string
		edit map[string]string // "" deletes the variable
		want string            // substring of the error
	}{
		{"no job id", map[string]string{EnvJobID: ""}, EnvJobID},
		{"job id with slash", map[string]string{EnvJobID: "a/b"}, EnvJobID},
		{"job id too long", map[string]string{EnvJobID: strings.Repeat("x", 65)}, EnvJobID},
		{"rank not int", map[string]string{EnvRank: "two"}, EnvRank},
		{"rank negative", map[string]string{EnvRank: "-1"}, EnvRank},
		{"rank too big", map[string]string{EnvRank: "4"}, "out of range"},
		{"no size", map[string]string{EnvSize: ""}, EnvSize},
		{"size zero", map[string]string{EnvSize: "0"}, EnvSize},
		{"no local rank", map[string]string{EnvLocalRank: ""}, EnvLocalRank},
		{"local rank too big", map[string]string{EnvLocalRank: "2"}, EnvLocalRank},
		{"local size too big", map[string]string{EnvLocalSize: "5"}, EnvLocalSize},
		{"local size zero", map[string]string{EnvLocalSize: "0"}, EnvLocalSize},
		{"no node", map[string]string{EnvNode: ""}, EnvNode},
		{"no coord", map[string]string{EnvCoord: ""}, EnvCoord},
		{"coord without port", map[string]string{EnvCoord: "localhost"}, EnvCoord},
		{"coord port zero", map[string]string{EnvCoord: "localhost:0"}, EnvCoord},
		{"coord port range", map[string]string{EnvCoord: "localhost:70000"}, EnvCoord},
		{"no secret", map[string]string{EnvSecret: ""}, EnvSecret},
		{"secret not hex", map[string]string{EnvSecret: "zz"}, EnvSecret},
		{"secret short", map[string]string{EnvSecret: "abcd"}, EnvSecret},
		{"bind not ip", map[string]string{EnvBind: "somehost"}, EnvBind},
		{"transports empty name", map[string]string{EnvTransports: "self,,tcp"}, EnvTransports},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validEnv()
			for k, v := range tt.edit {
				if v == "" {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			env, err := Lookup(mapEnv(m))
			if err == nil {
				t.Fatalf("Lookup = %+v, want an error mentioning %q", env, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Lookup error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), strings.Repeat("ab", 32)) {
				t.Fatalf("Lookup error %q leaks the secret", err)
			}
		})
	}
}

func TestEnvironRoundTrip(t *testing.T) {
	for _, e := range []Env{
		{JobID: "j", Rank: 0, Size: 1, LocalRank: 0, LocalSize: 1, Node: "n", Coord: "127.0.0.1:1", Secret: make([]byte, 32), Bind: DefaultBind},
		{JobID: "j2", Rank: 5, Size: 8, LocalRank: 1, LocalSize: 4, Node: "h#1", Coord: "[::1]:99", Secret: bytes.Repeat([]byte{7}, 16), Bind: "0.0.0.0", Transports: []string{"self", "tcp"}},
	} {
		m := map[string]string{}
		for _, kv := range e.Environ() {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("Environ entry %q has no '='", kv)
			}
			if _, dup := m[k]; dup {
				t.Fatalf("Environ sets %s twice", k)
			}
			m[k] = v
		}
		got, err := Lookup(mapEnv(m))
		if err != nil {
			t.Fatalf("Lookup(Environ(%+v)): %v", e, err)
		}
		if !reflect.DeepEqual(*got, e) {
			t.Fatalf("round trip = %+v, want %+v", *got, e)
		}
	}
}

func TestEnvironOmitsEmptyTransports(t *testing.T) {
	e := Env{JobID: "j", Size: 1, LocalSize: 1, Node: "n", Coord: "h:1", Secret: make([]byte, 32)}
	for _, kv := range e.Environ() {
		if strings.HasPrefix(kv, EnvTransports+"=") {
			t.Fatalf("Environ sets %q with no transports", kv)
		}
		if kv == EnvBind+"=" {
			t.Fatalf("Environ sets an empty %s", EnvBind)
		}
	}
}

func TestForeign(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string // substring; "" means Foreign must return ""
	}{
		{nil, ""},
		{map[string]string{"PMI_RANK": "3", "PMI_SIZE": "4"}, "PMI_RANK=3 (Hydra/PMI)"},
		{map[string]string{"PMI_FD": "5"}, "PMI_FD=5"},
		{map[string]string{"PMI_RANK": "0", "PMI_SIZE": "1"}, ""},
		{map[string]string{"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2"}, "OMPI_COMM_WORLD_RANK=1 (Open MPI)"},
		{map[string]string{"OMPI_COMM_WORLD_SIZE": "2"}, "OMPI_COMM_WORLD_SIZE=2"},
		{map[string]string{"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "1", "PMIX_RANK": "0"}, ""},
		{map[string]string{"PMIX_RANK": "2"}, "PMIX_RANK=2 (PMIx)"},
		{map[string]string{"SLURM_PROCID": "1", "SLURM_NTASKS": "4"}, "SLURM_PROCID=1 SLURM_NTASKS=4 (Slurm"},
		{map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}, ""},
		{map[string]string{"SLURM_NTASKS": "4"}, ""}, // sbatch script, not a task
		{map[string]string{"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "h"}, "RANK=1 WORLD_SIZE=2 (torchrun)"},
		{map[string]string{"RANK": "1", "WORLD_SIZE": "2"}, ""}, // RANK alone is too common a name
		{map[string]string{"RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "h"}, ""},
	}
	for _, tt := range tests {
		got := Foreign(mapEnv(tt.env))
		if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("Foreign(%v) = %q, want %q", tt.env, got, tt.want)
		}
	}
}
