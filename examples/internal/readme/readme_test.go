package readme

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the repository's root directory (this package is
// examples/internal/readme).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "README.md")); err != nil {
		t.Fatalf("no README.md at the repository root %s: %v", root, err)
	}
	return root
}

// block is a fenced code block of a Markdown file.
type block struct {
	file string // relative to the repository root
	line int    // of the opening fence
	lang string
	code string
}

// program reports whether b is a complete Go program: a go block whose
// first line that is neither blank nor a comment is a package clause.
func (b block) program() bool {
	if b.lang != "go" {
		return false
	}
	for _, l := range strings.Split(b.code, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "//") {
			continue
		}
		return strings.HasPrefix(l, "package ")
	}
	return false
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// codeBlocks returns the fenced code blocks of a Markdown file.
func codeBlocks(t testing.TB, root, rel string) []block {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	var out []block
	var cur *block
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &block{file: rel, line: n, lang: strings.TrimSpace(strings.TrimPrefix(line, "```"))}
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.code += line + "\n"
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: code block never closed", rel, cur.line)
	}
	return out
}

// markdownFiles returns every Markdown file of the repository (relative
// paths), node_modules aside.
func markdownFiles(t testing.TB, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".md") {
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// docPrograms returns the Go programs of README.md and docs/*.md.
func docPrograms(t testing.TB, root string) []block {
	t.Helper()
	files := []string{"README.md"}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	for _, d := range docs {
		rel, _ := filepath.Rel(root, d)
		files = append(files, filepath.ToSlash(rel))
	}
	var progs []block
	for _, f := range files {
		for _, b := range codeBlocks(t, root, f) {
			if b.program() {
				progs = append(progs, b)
			}
		}
	}
	return progs
}

// buildPrograms writes each program into its own directory of a new module
// that uses the repository as a clone, the way the README tells a newcomer
// (go mod init; go mod edit -replace), runs go vet and builds them. It
// returns the binaries by program. rewrite, when not nil, edits a program's
// source first (the address of the OP and of the apps, when the test cannot
// use the demo's own ports).
//
// Instead of the README's `go mod tidy`, which also fetches the test
// dependencies of every dependency, the build uses -mod=mod with the
// repository's go.sum files, so that it needs no network when the module
// cache holds what the repository itself needs.
func buildPrograms(t testing.TB, root string, progs []block, rewrite func(string) string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	gocmd := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	gocmd("mod", "init", "example.com/readme")
	gocmd("mod", "edit",
		"-replace", "github.com/multiapp-go/multiapp="+root,
		"-replace", "github.com/multiapp-go/multiapp/tokenstore/redisstore="+filepath.Join(root, "tokenstore", "redisstore"))
	var sum []byte
	for _, f := range []string{"go.sum", filepath.Join("tokenstore", "redisstore", "go.sum")} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		sum = append(sum, b...)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for i, p := range progs {
		name := fmt.Sprintf("p%d_%s", i+1, strings.NewReplacer("/", "_", ".md", "").Replace(p.file))
		src := p.code
		if rewrite != nil {
			src = rewrite(src)
		}
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "main.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		names[p.String()] = name
	}
	gocmd("vet", "./...")
	gocmd("build", "-o", filepath.Join(dir, "bin")+string(filepath.Separator), "./...")
	bins := map[string]string{}
	for prog, name := range names {
		bins[prog] = filepath.Join(dir, "bin", name)
	}
	return bins
}

// TestPrograms: every Go program of README.md and docs/ builds and passes go
// vet against this repository's code, used as a clone; every go block of
// README.md is a complete program (a snippet that cannot compile is how the
// README once needed 13 guesses).
func TestPrograms(t *testing.T) {
	root := repoRoot(t)
	for _, b := range codeBlocks(t, root, "README.md") {
		if b.lang == "go" && !b.program() {
			t.Errorf("%s: a go block of README.md that is not a complete program (package main, imports, main): make it one, or move it to docs/", b)
		}
	}
	progs := docPrograms(t, root)
	if len(progs) < 2 {
		t.Fatalf("found %d Go programs in README.md and docs/, want the web app and the API at least", len(progs))
	}
	bins := buildPrograms(t, root, progs, nil)
	for _, p := range progs {
		if _, err := os.Stat(bins[p.String()]); err != nil {
			t.Errorf("%s: not built: %v", p, err)
		}
	}
	t.Logf("built %d programs: %v", len(progs), progs)
}

var (
	mdLink   = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	htmlLink = regexp.MustCompile(`(?:href|src)="([^"]+)"`)
	heading  = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*#*\s*$`)
	slugDrop = regexp.MustCompile(`[^\p{L}\p{N} _-]`)
)

// anchors returns the GitHub anchors of a Markdown file's headings.
func anchors(md string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	inCode := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
		}
		if inCode {
			continue
		}
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		s := strings.ReplaceAll(slugDrop.ReplaceAllString(strings.ToLower(m[1]), ""), " ", "-")
		if n := seen[s]; n > 0 {
			out[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}

// TestLinks: no link of a Markdown file leaves the repository (such as
// ../shared, which users of the repository do not have), and every relative
// link points at a file or directory that exists, with its #anchor.
func TestLinks(t *testing.T) {
	root := repoRoot(t)
	files := markdownFiles(t, root)
	if len(files) < 3 {
		t.Fatalf("only %d Markdown files found under %s", len(files), root)
	}
	for _, rel := range files {
		data, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		// Links inside code blocks are examples, not links.
		var prose strings.Builder
		inCode := false
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "```") {
				inCode = !inCode
				continue
			}
			if !inCode {
				prose.WriteString(line + "\n")
			}
		}
		var targets []string
		for _, m := range mdLink.FindAllStringSubmatch(prose.String(), -1) {
			targets = append(targets, m[1])
		}
		for _, m := range htmlLink.FindAllStringSubmatch(prose.String(), -1) {
			targets = append(targets, m[1])
		}
		for _, target := range targets {
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			abs := filepath.Join(root, filepath.Dir(rel), filepath.FromSlash(path))
			if path == "" {
				abs = filepath.Join(root, rel)
			}
			if r, err := filepath.Rel(root, abs); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
				t.Errorf("%s: the link %q leaves the repository: copy what readers need into docs/", rel, target)
				continue
			}
			st, err := os.Stat(abs)
			if err != nil {
				t.Errorf("%s: the link %q points at nothing: %v", rel, target, err)
				continue
			}
			if anchor == "" || st.IsDir() || !strings.HasSuffix(abs, ".md") {
				continue
			}
			md, err := os.ReadFile(abs)
			if err != nil {
				t.Fatal(err)
			}
			if !anchors(string(md))[anchor] {
				t.Errorf("%s: the link %q names no heading of %s", rel, target, path)
			}
		}
	}
}
