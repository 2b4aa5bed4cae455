//go:build !unix

package redistest

// Pause needs SIGSTOP: the test is skipped here.
func (s *Server) Pause() { s.t.Skip("redistest: Pause needs a unix system") }

// Resume needs SIGCONT.
func (s *Server) Resume() {}
