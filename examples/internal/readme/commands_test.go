package readme

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	scriptCmd = regexp.MustCompile(`(?m)(?:^|[\s(` + "`" + `])\./(scripts/[a-z-]+)`)
	goRunCmd  = regexp.MustCompile(`go run (\./[A-Za-z0-9_./-]+)`)
)

// TestCommands: the commands the documentation tells people to run exist
// where it says (a renamed directory must not leave a README behind), and CI
// runs exactly the README's test command.
func TestCommands(t *testing.T) {
	root := repoRoot(t)
	for _, rel := range markdownFiles(t, root) {
		data, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range scriptCmd.FindAllStringSubmatch(string(data), -1) {
			st, err := os.Stat(filepath.Join(root, m[1]))
			if err != nil || st.Mode()&0o111 == 0 {
				t.Errorf("%s: ./%s is not an executable script of the repository (%v)", rel, m[1], err)
			}
		}
		for _, m := range goRunCmd.FindAllStringSubmatch(string(data), -1) {
			if strings.HasSuffix(m[1], "...") {
				continue // a pattern, not a package
			}
			// Paths are relative to the repository root, or to examples/
			// in the devop README ("cd examples" first).
			found := false
			for _, base := range []string{root, filepath.Join(root, "examples"), filepath.Join(root, filepath.Dir(rel))} {
				if matches, _ := filepath.Glob(filepath.Join(base, m[1], "*.go")); len(matches) > 0 {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("%s: `go run %s` names no Go package", rel, m[1])
			}
		}
	}

	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"./scripts/demo", "./scripts/test"} {
		if !strings.Contains(string(readme), cmd) {
			t.Errorf("README.md does not give the command %s", cmd)
		}
	}
	ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(ci)), "\n")
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "./scripts/test" {
		t.Errorf(".ci/run ends with %q, not the README's test command ./scripts/test", last)
	}
}
