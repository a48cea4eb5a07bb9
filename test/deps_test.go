package test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/gorun-hpc/gorun"

// allowedModules are the only modules go.mod may require (docs/architecture.md).
var allowedModules = []string{"golang.org/x/sys", "github.com/hashicorp/yamux"}

func TestGoModRequires(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	inBlock := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		var req string
		switch {
		case line == "require (":
			inBlock = true
			continue
		case inBlock && line == ")":
			inBlock = false
			continue
		case inBlock && line != "":
			req = strings.Fields(line)[0]
		case strings.HasPrefix(line, "require "):
			req = strings.Fields(line)[1]
		}
		if req != "" && !slices.Contains(allowedModules, req) {
			t.Errorf("go.mod requires %s; only %v are allowed without a measured reason in docs/", req, allowedModules)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// imports returns, for every package of the module, its direct imports
// (tests included) and its transitive dependencies (without tests).
func imports(t *testing.T) (direct, deps map[string][]string) {
	t.Helper()
	direct, deps = map[string][]string{}, map[string][]string{}
	out, err := exec.Command("go", "list", "-e", "-f", "{{.ImportPath}}|{{join .Imports \" \"}} {{join .TestImports \" \"}} {{join .XTestImports \" \"}}|{{join .Deps \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.SplitN(line, "|", 3)
		if len(parts) != 3 {
			continue
		}
		direct[parts[0]] = strings.Fields(parts[1])
		deps[parts[0]] = strings.Fields(parts[2])
	}
	return direct, deps
}

// TestImportGraph keeps the layers of docs/architecture.md: transports
// below the semantics, shm a leaf, the launcher not a rank.
func TestImportGraph(t *testing.T) {
	direct, deps := imports(t)
	under := func(pkg, prefix string) bool {
		p := module + "/" + prefix
		return pkg == p || strings.HasPrefix(pkg, p+"/")
	}
	rules := []struct {
		pkg       string   // package prefix the rule applies to
		banned    []string // module package prefixes it must not depend on (transitively)
		onlyInMod []string // if set: the only module packages it may depend on
	}{
		{pkg: "internal/wire", onlyInMod: []string{}},
		{pkg: "internal/auth", onlyInMod: []string{}},
		{pkg: "internal/hosts", onlyInMod: []string{}},
		{pkg: "internal/pmi", onlyInMod: []string{}},
		{pkg: "shm", onlyInMod: []string{}},
		{pkg: "internal/am", onlyInMod: []string{"internal/wire", "internal/shmsync", "shm"}},
		{pkg: "internal/shmsync", onlyInMod: []string{"shm"}},
		{pkg: "internal/transport", banned: []string{"runtime", "internal/bootstrap", "internal/launch", "rma", "patterns", "cmd"}},
		{pkg: "internal/bootstrap", banned: []string{"runtime", "internal/transport", "internal/launch", "rma", "patterns", "shm"}},
		{pkg: "internal/launch", banned: []string{"runtime", "internal/transport", "rma", "patterns"}},
		{pkg: "cmd/gorun", banned: []string{"runtime", "internal/transport", "rma", "patterns"}},
		{pkg: "runtime", banned: []string{"rma", "patterns", "cmd"}},
		{pkg: "rma", banned: []string{"patterns", "cmd"}},
		{pkg: "patterns", banned: []string{"cmd"}},
	}
	// Packages above the runtime reach transports only through it: they
	// may not import one themselves (tests included).
	directBans := []struct{ pkg, banned string }{
		{"rma", "internal/transport"},
		{"patterns", "internal/transport"},
		{"patterns", "internal/am"},
	}
	checked := 0
	for pkg, ds := range deps {
		for _, r := range rules {
			if !under(pkg, r.pkg) {
				continue
			}
			checked++
			for _, d := range ds {
				if !strings.HasPrefix(d, module+"/") {
					continue
				}
				if under(d, r.pkg) {
					continue
				}
				if r.onlyInMod != nil && !slices.ContainsFunc(r.onlyInMod, func(p string) bool { return under(d, p) }) {
					t.Errorf("%s depends on %s; it may depend on no other package of the module", pkg, d)
				}
				for _, b := range r.banned {
					if under(d, b) {
						t.Errorf("%s depends on %s, which the layering forbids", pkg, d)
					}
				}
			}
		}
	}
	for pkg, ims := range direct {
		for _, r := range directBans {
			if !under(pkg, r.pkg) {
				continue
			}
			checked++
			for _, d := range ims {
				if under(d, r.banned) {
					t.Errorf("%s imports %s; only the runtime may", pkg, d)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package matched a rule: the module layout changed?")
	}
	// The transport interface package knows none of its implementations.
	for _, d := range deps[module+"/internal/transport"] {
		if strings.HasPrefix(d, module+"/internal/transport/") {
			t.Errorf("internal/transport depends on its implementation %s", d)
		}
	}
	// cgo is never used by the module's own packages.
	for pkg, ims := range direct {
		if slices.Contains(ims, "C") {
			t.Errorf("%s imports C; gorun is pure Go", pkg)
		}
	}
}
