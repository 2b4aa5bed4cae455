package jsonread_test

import (
	"testing"

	"github.com/multiapp-go/multiapp/internal/jsonread"
)

const benchPayload = `{"aud":["https://api.acme.example","skc_58749293298765123"],"client_id":"skc_58749293298765123","exp":1767225900,"iat":1767225600,"iss":"http://127.0.0.1:40000","jti":"tkn_92847562398476523","nbf":1767225600,"oid":"org_59615193906282635","permissions":["orders:read","orders:write","invoices:read","customers:read","customers:write","reports:export"],"roles":["admin","billing_manager"],"scope":"openid profile email offline_access orders:read orders:write invoices:read","sid":"ses_63261964591202561","sub":"usr_63261964573376769","xoid":"ext_org_4711","xuid":"ext_user_0815"}`

func BenchmarkSkip(b *testing.B) {
	b.SetBytes(int64(len(benchPayload)))
	for b.Loop() {
		var r jsonread.Reader
		r.Reset(benchPayload)
		r.Skip()
		r.End()
		if r.Err() != nil {
			b.Fatal(r.Err())
		}
	}
}
