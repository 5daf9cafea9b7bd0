#!/usr/bin/env bash
# Screenshots of an HTML audit report at a phone's width and a desktop's,
# taken with headless Chromium, to look at the page as people see it.
#
#   scripts/screenshot-report.sh [REPORT.html [OUTDIR]]
#
# Without REPORT.html it first writes the sample reports of the report
# package's tests (a synthetic history with every kind of finding, reported
# midway and at its end, a day apart) into OUTDIR (default:
# ./report-screenshots), and shoots the second. It writes OUTDIR/report-phone.png
# (390 px wide) and OUTDIR/report-desktop.png (1280 px wide). CHROMIUM names
# the browser (default: the first of chromium, chromium-browser,
# google-chrome on PATH); on Debian, `apt-get install chromium`.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
page=${1:-}
out=${2:-report-screenshots}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [[ -z "$page" ]]; then
	(cd "$here" && AUDITOR_REPORT_SAMPLE_DIR="$out" go test -count=1 -run '^TestWriteSampleReport$' ./report/ >/dev/null)
	page=$(ls -1 "$out"/report-*.html | tail -n 1) # the newest: names are UTC times
fi
[[ -f "$page" ]] || { echo "screenshot-report.sh: no report at $page" >&2; exit 2; }
page=$(cd "$(dirname "$page")" && pwd)/$(basename "$page")

browser=${CHROMIUM:-}
if [[ -z "$browser" ]]; then
	for b in chromium chromium-browser google-chrome; do
		if command -v "$b" >/dev/null; then browser=$b; break; fi
	done
fi
[[ -n "$browser" ]] || { echo "screenshot-report.sh: no chromium on PATH (apt-get install chromium)" >&2; exit 2; }

# A profile of its own, so that a running browser is not disturbed; no
# sandbox, which needs privileges a container or CI runner may lack; no
# network at all (the page needs none).
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
shoot() { # width height file
	"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$profile" --proxy-server='127.0.0.1:9' --proxy-bypass-list='<-loopback>' \
		--force-device-scale-factor=1 --window-size="$1,$2" --screenshot="$3" "file://$page" >/dev/null 2>&1
	[[ -s "$3" ]] || { echo "screenshot-report.sh: $browser wrote no $3" >&2; exit 1; }
	echo "$3"
}
shoot 390 2600 "$out/report-phone.png"
shoot 1280 2200 "$out/report-desktop.png"
