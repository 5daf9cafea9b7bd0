// Package api is the auditor daemon's HTTP server: liveness and readiness
// probes, Prometheus metrics, the store's status and box explanations as
// JSON, and the reports directory.
//
// # Endpoints
//
//	GET /healthz              200 "ok" while the process runs
//	GET /readyz               200 when every readiness check passes: the node's height is known,
//	                          the store holds a block within Config.MaxLag blocks of it, no event
//	                          has waited longer than Config.MaxPublishDelay for NATS, and each of
//	                          Config.Checks finds nothing; 503 otherwise. Either way the body lists
//	                          the problems, each named by its check (Readiness, Problem)
//	GET /metrics              Prometheus text exposition (a registry of its own, with the Go
//	                          and process collectors)
//	GET /api/v1/status        Status: what `auditor status --json` prints, with the follower's,
//	                          relay's and report scheduler's counters when the daemon has them
//	GET /api/v1/boxes/{id}    Explanation: what `auditor verify --json` prints; 400 for a
//	                          malformed id, 404 for a box not stored
//	GET /boxes/{id}           the same explanation as an HTML page, linking the boxes it names
//	GET /reports/...          the reports directory (404 without one)
//
// Every endpoint answers GET and HEAD; other methods get 405. Errors of
// the JSON endpoints are {"error": "..."}. docs/openapi.yaml describes
// every answer; the tests check the real ones against it (a field added to
// an answer goes there too).
//
// The package reads the store through the small Store interface and the
// rest of the daemon through plain callbacks (Config.Chain, Publish,
// Reports, Conservation) returning structs defined here, so it depends on neither the
// follower, the relay nor the report scheduler. Reads of the store that a
// scrape or a status request makes are cached for Config.CacheTTL, and
// concurrent requests share one read: the status reads every stored row
// (for its state digest).
//
// Serve (or Listen then ServeListener) runs the server until its context
// is done and shuts it down gracefully.
package api
