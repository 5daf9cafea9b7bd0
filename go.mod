module github.com/async-emission/auditor

go 1.26.0

require (
	github.com/mattn/go-isatty v0.0.20
	github.com/mattn/go-sqlite3 v1.14.53
	github.com/pelletier/go-toml/v2 v2.4.3
	github.com/rs/zerolog v1.35.1
	github.com/segmentio/encoding v0.5.4
	golang.org/x/crypto v0.59.0
)

require (
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/segmentio/asm v1.1.3 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
