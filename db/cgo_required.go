//go:build !cgo

package db

// The store is SQLite through github.com/mattn/go-sqlite3, which is C code:
// building the auditor needs cgo and a C compiler. This file is compiled
// only when cgo is off (CGO_ENABLED=0, or no C compiler found: the go
// command turns cgo off when it finds none), to say so as the first error
// rather than "undefined: sqlite3.Error". Install gcc or clang (Debian:
// apt install gcc; Alpine: apk add build-base; macOS: xcode-select
// --install) and build with CGO_ENABLED=1.
var _ = the_auditor_needs_cgo_and_a_C_compiler_install_gcc_or_clang_and_build_with_CGO_ENABLED_1
