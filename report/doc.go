// Package report runs the scheduled audit reports (conservation sweeps and
// verdict summaries) and renders them as JSON and a self-contained HTML page.
package report
