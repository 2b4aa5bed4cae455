package tokenstore

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// DumpMemory renders every key and record m holds, for storetest.Dumper.
func DumpMemory(m *Memory) []byte {
	st := m.s
	var b strings.Builder
	st.mu.Lock()
	for k, e := range st.sessions {
		fmt.Fprintf(&b, "session %s: %+v\n", base64.RawURLEncoding.EncodeToString(k[:]), *e.s)
	}
	for k := range st.bySID {
		fmt.Fprintf(&b, "sid index %q\n", k)
	}
	for k := range st.bySubject {
		fmt.Fprintf(&b, "subject index %q\n", k)
	}
	for k, it := range st.once.items {
		fmt.Fprintf(&b, "one-time key %q until %v\n", k, it.exp)
	}
	for k, it := range st.revoked.items {
		fmt.Fprintf(&b, "revoked %q until %v\n", k, it.exp)
	}
	st.mu.Unlock()
	st.lockMu.Lock()
	for k := range st.locks {
		fmt.Fprintf(&b, "lock %s\n", base64.RawURLEncoding.EncodeToString(k[:]))
	}
	st.lockMu.Unlock()
	return []byte(b.String())
}
