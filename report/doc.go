// Package report makes the auditor's scheduled audit reports.
package report
