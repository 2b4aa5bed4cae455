package middleware

// OpenedCookies counts the entries of w's cache of opened session cookies
// (tests).
func OpenedCookies(w *Web) int { return w.opened.c.Len() }
