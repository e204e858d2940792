#!/usr/bin/env bash
# test.sh is THE test command (`make test`, .ci/run): it installs the tools,
# lints, builds for Windows, runs every test with the race detector (the
# integration tests start and stop their own emulators; the TestWindows*
# tests of cmd/eipclaim run eipclaim.exe under wine, see docs/windows.md),
# runs each fuzz target briefly, and checks for known vulnerabilities.
#
#   scripts/test.sh          everything
#   scripts/test.sh fuzz     only the fuzz targets (make fuzz: FUZZTIME=60s)
#
# Environment: FUZZTIME (default 20000x: 20,000 inputs, a few seconds) per fuzz
# target, a count or a duration (a duration can fail spuriously with "context
# deadline exceeded" on a loaded machine, golang/go#75804, fixed in Go 1.27); FUZZALL=1 fuzzes the
# targets of packages that link the AWS SDK too (make fuzz, make proof); GOVULNDB, a
# vulnerability database URL for govulncheck -db (default vuln.go.dev);
# IAMGATE_REPORT (default .tools/iamgate-report.tsv), where the IAM gate in
# front of moto records each distinct evaluated request (summarized below);
# VULNCHECK=require makes an unreachable database an error, not a warning.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TOOLS_BIN="$ROOT/.tools/bin"
FUZZTIME=${FUZZTIME:-20000x}
MODE=${1:-all}

# On exit, kill whatever this script started that still runs (the Go harness
# stops its own emulators; this catches the rest, e.g. after Ctrl-C).
descendants() {
	local parent=$1 status pid key value
	for status in /proc/[0-9]*/status; do
		pid=${status#/proc/}
		pid=${pid%/status}
		while read -r key value; do
			if [[ $key == PPid: ]]; then
				if [[ $value == "$parent" ]]; then
					descendants "$pid"
					echo "$pid"
				fi
				break
			fi
		done <"$status" 2>/dev/null || true
	done
}
cleanup() {
	local rc=$? pids
	trap - EXIT INT TERM
	pids=$(descendants $$)
	if [[ -n "$pids" ]]; then
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null || true
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { printf '\n==> %s\n' "$*"; }
elapsed() { printf '    (%ds)\n' "$((SECONDS - $1))"; }

fuzz() {
	step "fuzz targets, $FUZZTIME each"
	# Packages whose tests declare a fuzz target; go test -list then names
	# them exactly, without building every package's tests.
	local dirs pkgs line pkg name n=0 t0=$SECONDS
	dirs=$(grep -rl --include='*_test.go' -E '^func Fuzz[A-Z0-9_]' . 2>/dev/null |
		grep -v -e '^./.tools/' -e '/testdata/' | xargs -r -n1 dirname | sort -u)
	if [[ -z "$dirs" ]]; then
		echo "    no fuzz targets"
		return
	fi
	# shellcheck disable=SC2086
	pkgs=$(go list $dirs)
	if [[ "${FUZZALL:-}" != 1 ]]; then
		# In the test run, only the packages whose instrumented build is
		# quick: a package that links the AWS SDK costs minutes on a cold
		# build cache (its seed corpus still runs in go test; make fuzz and
		# make proof fuzz it).
		local quick=()
		local deps
		for pkg in $pkgs; do
			# Not a pipe into grep -q: with pipefail, go list killed by
			# SIGPIPE would make the test fail at random.
			deps=$(go list -deps "$pkg")
			if ! grep -q '^github.com/aws/aws-sdk-go-v2/' <<<"$deps"; then
				quick+=("$pkg")
			else
				echo "    $pkg: fuzzed by make fuzz and make proof (links the AWS SDK)"
			fi
		done
		pkgs="${quick[*]}"
	fi
	# -list prints the names, then "ok <package> <time>" for each package.
	local -a targets=()
	local -a names=()
	# shellcheck disable=SC2086
	while IFS= read -r line; do
		case $line in
		Fuzz*) names+=("$line") ;;
		ok*)
			pkg=$(awk '{ print $2 }' <<<"$line")
			for name in "${names[@]}"; do targets+=("$pkg $name"); done
			names=()
			;;
		esac
	done < <(go test -list '^Fuzz' $pkgs)
	local log
	log=$(mktemp)
	for line in "${targets[@]}"; do
		read -r pkg name <<<"$line"
		echo "    $pkg $name"
		if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg" >"$log" 2>&1; then
			cat "$log"
			rm -f "$log"
			echo "FAIL: fuzz $pkg $name (the failing input is saved under that package's testdata/fuzz/$name)"
			return 1
		fi
		n=$((n + 1))
	done
	rm -f "$log"
	echo "    $n fuzz targets ok"
	elapsed "$t0"
}

# iam_report prints, per shipped policy, the distinct requests the IAM gate
# evaluated in the tests: action, resource type, context keys, decision.
iam_report() {
	step "IAM gate: the distinct requests evaluated, per policy ($IAMGATE_REPORT)"
	if [[ ! -s "$IAMGATE_REPORT" ]]; then
		echo "    none"
		return
	fi
	sort -u "$IAMGATE_REPORT" | awk -F'\t' '
		$1 != policy { policy = $1; printf "  %s\n", policy }
		{ d = ($5 == "Allowed" ? "allowed" : "DENIED"); if ($5 ~ /declared/) d = "denied*"
		  printf "    %-8s %-40s %-18s %s\n", d, $2, $3, ($4 == "" ? "-" : $4) }
		END { print "  (denied*: a denial its test declares, Moto.ExpectDenied; DENIED s3:ListBucket: the 403 for a missing key; DENIED s3:GetObject: an object of a bucket that does not exist, answered NoSuchBucket before the policy as S3 does)" }'
}

step "tools"
bash scripts/tools.sh

if [[ "$MODE" == fuzz ]]; then
	fuzz
	exit 0
fi

step "gofmt"
unformatted=$(find . -name '*.go' -not -path './.tools/*' -not -path './.git/*' -not -path '*/testdata/*' -print0 |
	xargs -0 -r gofmt -l)
if [[ -n "$unformatted" ]]; then
	echo "FAIL: these files need gofmt -w:"
	echo "$unformatted"
	exit 1
fi

step "go vet"
t0=$SECONDS
go vet ./...
elapsed "$t0"

step "staticcheck"
t0=$SECONDS
"$TOOLS_BIN/staticcheck" ./...
elapsed "$t0"

step "GOOS=windows go build"
t0=$SECONDS
GOOS=windows GOARCH=amd64 go build ./...
elapsed "$t0"

step "go test -race"
t0=$SECONDS
export IAMGATE_REPORT=${IAMGATE_REPORT:-$ROOT/.tools/iamgate-report.tsv}
: >"$IAMGATE_REPORT"
go test -race -count=1 -timeout 15m ./...
elapsed "$t0"
iam_report

fuzz

step "govulncheck"
t0=$SECONDS
# vuln.go.dev is out of reach from these machines, the module proxy is not:
# build the database from golang.org/x/vulndb and require a real check.
if [[ -z "${GOVULNDB:-}" ]] && bash scripts/vulndb.sh; then
	GOVULNDB="file://$ROOT/.tools/vulndb"
	VULNCHECK=require
fi
set +e
vuln_out=$("$TOOLS_BIN/govulncheck" ${GOVULNDB:+-db "$GOVULNDB"} ./... 2>&1)
vuln_rc=$?
set -e
echo "$vuln_out"
if [[ $vuln_rc -ne 0 ]]; then
	# Exit code 3 means it found vulnerabilities; anything else is govulncheck
	# itself failing, most often because vuln.go.dev is out of reach.
	if [[ $vuln_rc -ne 3 && "${VULNCHECK:-}" != require ]] &&
		grep -qiE 'fetching vulnerabilities|dial tcp|no such host|connection refused|i/o timeout|TLS handshake|proxyconnect' <<<"$vuln_out"; then
		echo "WARNING: govulncheck could not reach its vulnerability database; NOT checked."
		echo "         (set GOVULNDB to a reachable mirror or file:// copy, or VULNCHECK=require to make this an error)"
	else
		echo "FAIL: govulncheck (exit $vuln_rc)"
		exit 1
	fi
fi
elapsed "$t0"

echo
echo "all checks passed"
