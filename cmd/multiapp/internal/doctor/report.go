package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Report is the outcome of a diagnosis, in check order.
type Report struct {
	Checks []Check `json:"checks"`

	// hidden counts the checks Problems left out, by status, for the
	// summary; headings keeps the per-app headings of the full report.
	hidden   map[Status]int
	headings bool
}

// Problems returns the report without its OK and SKIP checks: only what
// needs attention, with the summary still counting every check.
func (r *Report) Problems() *Report {
	p := &Report{hidden: map[Status]int{}, headings: r.multiApp()}
	for s, n := range r.hidden {
		p.hidden[s] = n
	}
	for _, c := range r.Checks {
		if c.Status == Warn || c.Status == Fail {
			p.Checks = append(p.Checks, c)
		} else {
			p.hidden[c.Status]++
		}
	}
	return p
}

// multiApp reports whether the checks are about several apps (or across
// them), which the text report separates with headings.
func (r *Report) multiApp() bool {
	if r.headings {
		return true
	}
	apps := map[string]bool{}
	for _, c := range r.Checks {
		apps[c.App] = true
	}
	return len(apps) > 1
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool {
	for _, c := range r.Checks {
		if c.Status == Fail {
			return true
		}
	}
	return false
}

// Count returns how many checks have status s (including those Problems
// left out).
func (r *Report) Count(s Status) int {
	n := r.hidden[s]
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// Find returns the first check of app (any app when empty) named name.
func (r *Report) Find(app, name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name && (app == "" || c.App == app) {
			return c, true
		}
	}
	return Check{}, false
}

// Summary is "2 FAIL, 1 WARN, 14 OK" (and SKIP when any).
func (r *Report) Summary() string {
	var parts []string
	for _, s := range []Status{Fail, Warn, OK, Skip} {
		if n := r.Count(s); n > 0 || s == Fail {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	return strings.Join(parts, ", ")
}

// WriteText writes one line per check ("OK    name  message"), a "fix:"
// line under each WARN and FAIL, a heading per app when there are several,
// and the summary.
func (r *Report) WriteText(w io.Writer) error {
	headings := r.multiApp()
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Name))
	}
	var b strings.Builder
	current := "\x00"
	for _, c := range r.Checks {
		if headings && c.App != current {
			current = c.App
			if c.App == "" {
				b.WriteString("== across apps\n")
			} else {
				fmt.Fprintf(&b, "== %s\n", c.App)
			}
		}
		fmt.Fprintf(&b, "%-4s  %-*s  %s\n", c.Status, width, c.Name, oneLine(c.Message))
		if c.Fix != "" && (c.Status == Warn || c.Status == Fail) {
			fmt.Fprintf(&b, "      %-*s  fix: %s\n", width, "", oneLine(c.Fix))
		}
	}
	fmt.Fprintf(&b, "%s\n", r.Summary())
	_, err := io.WriteString(w, b.String())
	return err
}

// jsonReport is the --json shape: the checks and the counts.
type jsonReport struct {
	OK      bool           `json:"ok"`
	Summary map[Status]int `json:"summary"`
	Checks  []Check        `json:"checks"`
}

// WriteJSON writes {"ok": bool, "summary": {"OK": n, ...}, "checks": [...]}.
func (r *Report) WriteJSON(w io.Writer) error {
	out := jsonReport{OK: !r.Failed(), Summary: map[Status]int{}, Checks: r.Checks}
	if out.Checks == nil {
		out.Checks = []Check{}
	}
	for _, s := range []Status{OK, Warn, Fail, Skip} {
		out.Summary[s] = r.Count(s)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// oneLine keeps a report line on one line (OP error texts may hold
// newlines) and strips control characters an OP could send.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case r < 0x20 || r == 0x7f:
			return -1
		}
		return r
	}, s)
}
