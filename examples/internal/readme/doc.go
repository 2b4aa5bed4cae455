// Package readme holds the tests of the repository's documentation, run by
// ./scripts/test like every other test:
//
//   - every Go program shown in README.md and docs/*.md (a ```go block with a
//     package clause) builds and passes go vet against this repository's
//     code, in a new module that uses a clone as the README explains
//     (go mod init, go mod edit -replace); every ```go block of README.md
//     is such a complete program;
//   - the README's web app and API, run as built, sign in through the demo's
//     OP in headless Chromium and accept its access tokens;
//   - no link in a Markdown file leaves the repository, and every relative
//     link (and #anchor) points at something that exists.
package readme
