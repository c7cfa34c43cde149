// Package citecheck holds the test that keeps the code's citations of
// docs/reference/ openable: every "docs/reference/<file>.md §N" (and every
// bare "§N" that refers to one, see docs/reference/README.md) must name a
// file and a section that exist. It has no code; the check is
// citecheck_test.go, run by `go test ./...`.
package citecheck
