#!/usr/bin/env bash
# tools.sh installs what `make test` needs on a fresh Debian machine, and
# nothing that is already there. Safe to run any number of times.
#
#   scripts/tools.sh [test]   everything below (make test, make tools)
#   scripts/tools.sh demo     only what `make demo` starts: the IMDS emulator,
#                             the Lambda RIE, the IAM gate's evaluator, and
#                             moto checked; no apt, no linters
#
#   .tools/bin/ec2-metadata-mock   AWS's IMDS emulator (AEMM), pinned
#   .tools/bin/aws-lambda-rie      AWS's Lambda runtime interface emulator, pinned
#   .tools/bin/staticcheck         linter, pinned
#   .tools/bin/govulncheck         vulnerability check, pinned
#   .tools/iamgate/node_modules    the IAM gate's evaluator, @cloud-copilot/iam-simulate,
#                                  pinned by tools/iamgate/package-lock.json (npm ci)
#   named, nsupdate, dig           BIND 9, from Debian's bind9 + bind9-dnsutils
#   moto_server                    checked only: it comes from PyPI
#   wine64, .tools/wine/prefix     wine 8 and its prefix for the Windows tests,
#                                  by scripts/wine.sh (apt wine64, mingw-w64)
set -euo pipefail

MODE=${1:-test}
case $MODE in
test | demo) ;;
*) printf 'tools: unknown mode %q: want test (the default) or demo\n' "$MODE" >&2; exit 2 ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TOOLS_BIN="$ROOT/.tools/bin"

AEMM_VERSION=v1.13.0        # github.com/aws/amazon-ec2-metadata-mock
RIE_VERSION=v0.0.0-20261030222936-bef5c4ba774d  # github.com/aws/aws-lambda-runtime-interface-emulator (keep in step with internal/testenv/rie.go)
STATICCHECK_VERSION=v0.8.2  # honnef.co/go/tools, the first line built for Go 1.26
GOVULNCHECK_VERSION=v1.9.0  # golang.org/x/vuln
PYENV_BIN="$HOME/.pyenv/versions/3.11.7/bin"

say() { printf 'tools: %s\n' "$*"; }

command -v go >/dev/null || { say "go is not on PATH (expected /usr/local/go/bin)"; exit 1; }
mkdir -p "$TOOLS_BIN"

# go_tool NAME MODULE PACKAGE VERSION: install PACKAGE@VERSION into .tools/bin
# unless the binary there was already built from MODULE at VERSION.
go_tool() {
	local name=$1 module=$2 package=$3 version=$4 have
	have=$(go version -m "$TOOLS_BIN/$name" 2>/dev/null |
		awk -v m="$module" '($1 == "mod" || $1 == "path") && $2 == m && $3 != "" { print $3; exit }') || true
	if [[ "$have" == "$version" ]]; then
		say "ok        $name $version (.tools/bin)"
		return
	fi
	GOBIN="$TOOLS_BIN" go install "$package@$version"
	say "installed $name $version into .tools/bin${have:+ (was $have)}"
}

go_tool ec2-metadata-mock github.com/aws/amazon-ec2-metadata-mock \
	github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock "$AEMM_VERSION"
go_tool aws-lambda-rie github.com/aws/aws-lambda-runtime-interface-emulator \
	github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie "$RIE_VERSION"
if [[ $MODE == test ]]; then
	go_tool staticcheck honnef.co/go/tools honnef.co/go/tools/cmd/staticcheck "$STATICCHECK_VERSION"
	go_tool govulncheck golang.org/x/vuln golang.org/x/vuln/cmd/govulncheck "$GOVULNCHECK_VERSION"
fi

# The IAM evaluator of the test world's gate (internal/testenv/iamgate.go),
# installed with npm ci from the lock file; again only when the lock changed.
IAMGATE="$ROOT/.tools/iamgate"
command -v node >/dev/null && command -v npm >/dev/null ||
	{ say "node and npm are needed for the IAM gate's evaluator (apt-get install nodejs npm)"; exit 1; }
if cmp -s tools/iamgate/package-lock.json "$IAMGATE/package-lock.json" &&
	[[ -f "$IAMGATE/node_modules/@cloud-copilot/iam-simulate/package.json" ]]; then
	say "ok        iam-simulate $(node -p 'require(process.argv[1]).version' "$IAMGATE/node_modules/@cloud-copilot/iam-simulate/package.json") (.tools/iamgate)"
else
	mkdir -p "$IAMGATE"
	cp tools/iamgate/package.json tools/iamgate/package-lock.json "$IAMGATE/"
	(cd "$IAMGATE" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
	say "installed iam-simulate into .tools/iamgate (npm ci)"
fi

# BIND 9 for the RFC 2136 tests; systemd-analyze for the unit files' test.
# The demo uses neither: `tools.sh demo` never runs apt.
have_named() { [[ -n "${NAMED_BIN:-}" && -x "${NAMED_BIN}" ]] || command -v named >/dev/null || [[ -x /usr/sbin/named ]]; }
have_nsupdate() { command -v nsupdate >/dev/null && command -v dig >/dev/null; }
have_analyze() { command -v systemd-analyze >/dev/null; }
if [[ $MODE == demo ]]; then
	: # no BIND, no systemd
elif have_named && have_nsupdate && have_analyze; then
	say "ok        named ($( (named -v 2>/dev/null || /usr/sbin/named -v) | head -n1))"
else
	sudo=()
	if [[ $(id -u) != 0 ]]; then sudo=(sudo); fi
	apt_install() { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends bind9 bind9-dnsutils systemd; }
	if ! apt_install; then
		say "apt-get install failed; running apt-get update and trying again"
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
		apt_install
	fi
	have_named || { say "named still missing after installing bind9"; exit 1; }
	have_analyze || { say "systemd-analyze still missing after installing systemd"; exit 1; }
	say "installed bind9 bind9-dnsutils systemd (apt)"
fi

# moto's server for EC2, S3 and Route 53. PyPI is not reachable from every
# machine, so this only checks, in the order the Go harness looks.
moto=""
if [[ -n "${MOTO_SERVER:-}" ]]; then
	moto=$MOTO_SERVER
elif [[ -x "$TOOLS_BIN/moto_server" ]]; then
	moto=$TOOLS_BIN/moto_server
elif command -v moto_server >/dev/null; then
	moto=$(command -v moto_server)
elif [[ -x "$PYENV_BIN/moto_server" ]]; then
	moto=$PYENV_BIN/moto_server
fi
if [[ -z "$moto" || ! -x "$moto" ]]; then
	say "moto_server not found (looked at \$MOTO_SERVER, .tools/bin, PATH, $PYENV_BIN)."
	say "install it with: python3 -m pip install 'moto[server]'   (needs PyPI), or set MOTO_SERVER=/path/to/moto_server"
	exit 1
fi
say "ok        moto_server ($moto)"

# wine, for the Windows tests (eipclaim.exe under wine): its own script, so
# that what only the tests need can be installed apart. The demo runs no
# Windows program.
if [[ $MODE == test ]]; then
	bash scripts/wine.sh
fi
