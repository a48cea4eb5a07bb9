package hosts

import (
	"reflect"
	"testing"
)

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := kv[k]
		return v, ok
	}
}

func TestSlurmHosts(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []Host
	}{
		{"tasks", map[string]string{
			"SLURM_JOB_NODELIST":   "node[01-03],gpu7",
			"SLURM_TASKS_PER_NODE": "2(x3),1",
		}, []Host{h("node01", 2), h("node02", 2), h("node03", 2), h("gpu7", 1)}},
		{"tasks win over cpus", map[string]string{
			"SLURM_JOB_NODELIST":      "n[1-2]",
			"SLURM_TASKS_PER_NODE":    "1(x2)",
			"SLURM_JOB_CPUS_PER_NODE": "8(x2)",
		}, []Host{h("n1", 1), h("n2", 1)}},
		{"cpus when tasks unset", map[string]string{
			"SLURM_JOB_NODELIST":      "n[1-3]",
			"SLURM_JOB_CPUS_PER_NODE": "72(x2),36",
		}, []Host{h("n1", 72), h("n2", 72), h("n3", 36)}},
		{"cpus when tasks empty", map[string]string{
			"SLURM_JOB_NODELIST":      "n1",
			"SLURM_TASKS_PER_NODE":    "",
			"SLURM_JOB_CPUS_PER_NODE": "4",
		}, []Host{h("n1", 4)}},
		{"old nodelist name", map[string]string{
			"SLURM_NODELIST":       "n[1-2]",
			"SLURM_TASKS_PER_NODE": "3,1",
		}, []Host{h("n1", 3), h("n2", 1)}},
		{"job nodelist wins", map[string]string{
			"SLURM_JOB_NODELIST":   "a",
			"SLURM_NODELIST":       "b",
			"SLURM_TASKS_PER_NODE": "1",
		}, []Host{h("a", 1)}},
		{"extra counts ignored", map[string]string{
			"SLURM_JOB_NODELIST":   "odin001",
			"SLURM_TASKS_PER_NODE": "4(x30)",
		}, []Host{h("odin001", 4)}},
		{"repeated node adds", map[string]string{
			"SLURM_JOB_NODELIST":   "n1,n2,n1",
			"SLURM_TASKS_PER_NODE": "1,2,3",
		}, []Host{h("n1", 4), h("n2", 2)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := SlurmHosts(env(tc.env))
			if err != nil || !ok {
				t.Fatalf("SlurmHosts: ok=%v, %v", ok, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSlurmHostsOutside(t *testing.T) {
	got, ok, err := SlurmHosts(env(map[string]string{"SLURM_TASKS_PER_NODE": "2", "HOME": "/"}))
	if got != nil || ok || err != nil {
		t.Errorf("outside an allocation: %v, %v, %v; want nil, false, nil", got, ok, err)
	}
}

func TestSlurmHostsErrors(t *testing.T) {
	for _, tc := range []struct {
		name         string
		env          map[string]string
		source, text string
		msg          string
	}{
		{"empty nodelist", map[string]string{"SLURM_JOB_NODELIST": "", "SLURM_TASKS_PER_NODE": "1"},
			"SLURM_JOB_NODELIST", "", "no host names"},
		{"bad nodelist", map[string]string{"SLURM_JOB_NODELIST": "n1,n[1-", "SLURM_TASKS_PER_NODE": "1"},
			"SLURM_JOB_NODELIST", "n1,n[1-", "not closed"},
		{"bad old nodelist", map[string]string{"SLURM_NODELIST": "n[2-1]", "SLURM_TASKS_PER_NODE": "1"},
			"SLURM_NODELIST", "n[2-1]", "runs backwards"},
		{"no counts", map[string]string{"SLURM_JOB_NODELIST": "n[1-2]"},
			"SLURM_JOB_NODELIST", "n[1-2]", "neither SLURM_TASKS_PER_NODE nor SLURM_JOB_CPUS_PER_NODE is set"},
		{"both counts empty", map[string]string{"SLURM_JOB_NODELIST": "n1", "SLURM_TASKS_PER_NODE": "", "SLURM_JOB_CPUS_PER_NODE": ""},
			"SLURM_JOB_NODELIST", "n1", "neither"},
		{"bad tasks", map[string]string{"SLURM_JOB_NODELIST": "n[1-2]", "SLURM_TASKS_PER_NODE": "2(x2"},
			"SLURM_TASKS_PER_NODE", "2(x2", "n(xk)"},
		{"bad cpus", map[string]string{"SLURM_JOB_NODELIST": "n[1-2]", "SLURM_JOB_CPUS_PER_NODE": "a"},
			"SLURM_JOB_CPUS_PER_NODE", "a", "not a whole number"},
		{"too few counts", map[string]string{"SLURM_JOB_NODELIST": "n[1-4]", "SLURM_TASKS_PER_NODE": "2(x3)"},
			"SLURM_TASKS_PER_NODE", "2(x3)", "gives counts for 3 nodes but SLURM_JOB_NODELIST names 4"},
		{"zero count", map[string]string{"SLURM_JOB_NODELIST": "n[1-2]", "SLURM_TASKS_PER_NODE": "1,0"},
			"SLURM_TASKS_PER_NODE", "1,0", "gives node n2 (number 2 in SLURM_JOB_NODELIST) no slots"},
		{"sum too large", map[string]string{"SLURM_JOB_NODELIST": "n1,n1", "SLURM_TASKS_PER_NODE": "1048576(x2)"},
			"SLURM_JOB_NODELIST", "n1,n1", "would have 2097152 slots"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ok, err := SlurmHosts(env(tc.env))
			if err == nil || !ok {
				t.Fatalf("SlurmHosts: ok=%v, err=%v; want ok and an error", ok, err)
			}
			checkErr(t, err, tc.source, 0, tc.text, tc.msg)
		})
	}
}
