#!/usr/bin/env bash
# Checks the deployment files with Prometheus's own promtool:
#   - deploy/prometheus/alerts.yml parses (promtool check rules),
#   - its unit tests pass (promtool test rules alerts_test.yml),
#   - every query of the Grafana dashboard deploy/grafana/auditor.json parses
#     as PromQL (each made a recording rule by ./deploy/grafana/promql).
# The README's test command runs it, and so CI (.ci/run).
#
# promtool is built from the Go module proxy at the pinned version below, so
# nothing but Go is needed. The first run on a machine downloads its modules
# (about 1.8 GB) and builds it (9 minutes of CPU on 2 cores); later runs reuse
# Go's module and build caches (seconds). PROMTOOL=/path/to/promtool uses
# another build instead.
set -euo pipefail
cd "$(dirname "$0")/.."

# Prometheus 3.16's Go module version.
promtool_module=github.com/prometheus/prometheus/cmd/promtool@v0.316.0

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# `go run` keeps the linked executable in Go's build cache: a later run
# costs about a second of CPU (`go install` would link it again, ten).
promtool() {
	if [[ -n "${PROMTOOL:-}" ]]; then
		"$PROMTOOL" "$@"
	else
		go run "$promtool_module" "$@"
	fi
}

promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts_test.yml)
go run ./deploy/grafana/promql deploy/grafana/auditor.json >"$tmp/dashboard-queries.yml"
promtool check rules "$tmp/dashboard-queries.yml"
