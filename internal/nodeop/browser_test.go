package nodeop

import (
	"net/url"
	"testing"
)

// The stock node-oidc-provider pages (not used by op.mjs, which marks its own
// forms) must still be recognised: the end-session confirmation puts its
// buttons outside the form, and the logout without a session is a
// self-submitting form.
func TestFindSubmittableStockPages(t *testing.T) {
	tests := []struct {
		name, doc, kind, action string
		want                    url.Values
	}{{
		name: "stock logout confirmation",
		doc: `<div class="container"><h1>Do you want to sign-out from 127.0.0.1:1234?</h1>
<form id="op.logoutForm" method="post" action="http://127.0.0.1:1234/session/end/confirm"><input type="hidden" name="xsrf" value="a&amp;b"/></form>
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button></div>`,
		kind: "logout", action: "http://127.0.0.1:1234/session/end/confirm",
		want: url.Values{"xsrf": {"a&b"}, "logout": {"yes"}},
	}, {
		name: "form_post",
		doc: `<html><head><script>
    document.addEventListener('DOMContentLoaded', function () { document.forms[0].submit() });
  </script></head><body><form method="post" action="/session/end/confirm">
    <input type="hidden" name="xsrf" value="x"/>
<input type="hidden" name="logout" value="yes"/>
    <noscript><button autofocus type="submit">Continue</button></noscript></form></body></html>`,
		kind: "auto", action: "/session/end/confirm",
		want: url.Values{"xsrf": {"x"}, "logout": {"yes"}},
	}, {
		name: "stock devInteractions login",
		doc: `<form autocomplete="off" action="/interaction/abc" method="post">
  <input type="hidden" name="prompt" value="login"/>
  <input required type="text" name="login" placeholder="Enter any login" autofocus="on">
  <input required type="password" name="password" placeholder="and password" >
  <button type="submit" class="login login-submit">Sign-in</button>
</form>`,
		kind: "login", action: "/interaction/abc",
		want: url.Values{"prompt": {"login"}, "login": {""}, "password": {""}},
	}, {
		name: "stock consent",
		doc: `<!-- <form action="/nope"> --><form autocomplete="off" action="/interaction/abc" method="post">
  <input type="hidden" name="prompt" value="consent"/>
  <button autofocus type="submit" class="login login-submit">Continue</button>
</form>`,
		kind: "consent", action: "/interaction/abc",
		want: url.Values{"prompt": {"consent"}},
	}, {
		name: "an app's page with a search form is left to the test",
		doc:  `<form action="/search"><input name="q"><button>Go</button></form>`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, kind := findSubmittable(tc.doc)
			if kind != tc.kind {
				t.Fatalf("kind = %q, want %q", kind, tc.kind)
			}
			if f == nil {
				return
			}
			if f.action != tc.action {
				t.Errorf("action = %q, want %q", f.action, tc.action)
			}
			if got := f.values(); got.Encode() != tc.want.Encode() {
				t.Errorf("values = %v, want %v", got, tc.want)
			}
		})
	}
}
