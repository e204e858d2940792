#!/usr/bin/env bash
# wine.sh installs what the Windows tests need to run eipclaim.exe under wine
# (internal/testenv/wine.go), and nothing that is already there. Called by
# tools.sh for `make test`; not needed by `make demo`. Safe to run any number
# of times: a second run checks a stamp and says "ok" in about a second.
#
#   wine64, wineserver             Debian's wine 8 (wine64), apt
#   x86_64-w64-mingw32-gcc         Debian's mingw-w64 cross compiler, apt
#   .tools/wine/bcryptprimitives.dll
#                                  built from tools/wine/: Go's runtime needs
#                                  ProcessPrng, which wine 8 lacks
#   .tools/wine/prefix             the wine prefix (C:\), initialised once,
#                                  set to Windows 10, the DLL in system32
#   .tools/wine/stamp              what the prefix was made from
#
# The tests take .tools/wine/lock while they use the prefix; so does this
# script while it changes it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
WINE_DIR="$ROOT/.tools/wine"
PREFIX="$WINE_DIR/prefix"

say() { printf 'tools: %s\n' "$*"; }

# find_wine sets WINE64 and WINESERVER: Debian's wine64 package puts them
# in /usr/lib/wine (the wine package's /usr/bin wrappers are not needed).
find_wine() {
	WINE64=${WINE64:-}
	WINESERVER=${WINESERVER:-}
	local c
	if [[ -z "$WINE64" ]]; then
		for c in "$(command -v wine64 || true)" /usr/lib/wine/wine64; do
			if [[ -n "$c" && -x "$c" ]]; then WINE64=$c && break; fi
		done
	fi
	if [[ -z "$WINESERVER" ]]; then
		for c in "$(command -v wineserver || true)" /usr/lib/wine/wineserver64 /usr/lib/wine/wineserver; do
			if [[ -n "$c" && -x "$c" ]]; then WINESERVER=$c && break; fi
		done
	fi
	[[ -n "$WINE64" && -n "$WINESERVER" ]]
}
have_mingw() { command -v x86_64-w64-mingw32-gcc >/dev/null; }

if find_wine && have_mingw; then
	:
else
	sudo=()
	if [[ $(id -u) != 0 ]]; then sudo=(sudo); fi
	apt_install() { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wine64 gcc-mingw-w64-x86-64; }
	if ! apt_install; then
		say "apt-get install failed; running apt-get update and trying again"
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
		apt_install
	fi
	find_wine || { say "wine64 or wineserver still missing after installing wine64 (looked at PATH, /usr/lib/wine)"; exit 1; }
	have_mingw || { say "x86_64-w64-mingw32-gcc still missing after installing gcc-mingw-w64-x86-64"; exit 1; }
	say "installed wine64 gcc-mingw-w64-x86-64 (apt)"
fi

wine_version=$("$WINE64" --version)
want=$(printf '%s\n' "$wine_version" "$(cat tools/wine/bcryptprimitives.c tools/wine/bcryptprimitives.def | sha256sum)" | sha256sum | cut -c1-16)
dll="$PREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [[ -f "$WINE_DIR/stamp" && $(head -n1 "$WINE_DIR/stamp") == "$want" && -f "$dll" && -f "$PREFIX/system.reg" ]]; then
	say "ok        wine prefix ($wine_version, .tools/wine/prefix)"
	exit 0
fi

mkdir -p "$WINE_DIR"
exec 9>"$WINE_DIR/lock"
flock 9

export WINEPREFIX=$PREFIX WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" WINEARCH=win64
unset DISPLAY WAYLAND_DISPLAY
x86_64-w64-mingw32-gcc -O2 -shared -o "$WINE_DIR/bcryptprimitives.dll" \
	tools/wine/bcryptprimitives.c tools/wine/bcryptprimitives.def -lbcrypt

# A prefix made by another wine, or half made, is made again; one that only
# lacks the current DLL keeps its registry.
if [[ ! -f "$PREFIX/system.reg" || ! -f "$WINE_DIR/stamp" || $(sed -n 2p "$WINE_DIR/stamp" 2>/dev/null) != "$wine_version" ]]; then
	"$WINESERVER" -k 2>/dev/null || true
	rm -rf "$PREFIX"
	"$WINE64" wineboot --init >/dev/null 2>&1 || true
	"$WINESERVER" -w # the registry is written when it exits
	[[ -f "$PREFIX/system.reg" ]] || { say "wineboot did not create the prefix $PREFIX"; exit 1; }
fi
"$WINE64" winecfg -v win10
[[ $("$WINE64" winecfg -v 2>/dev/null | tr -d '\r') == win10 ]] || { say "the prefix is not set to Windows 10 (winecfg -v win10)"; exit 1; }
cp "$WINE_DIR/bcryptprimitives.dll" "$dll"
# Let the wineserver write the registry and exit.
"$WINESERVER" -w
printf '%s\n%s\n' "$want" "$wine_version" >"$WINE_DIR/stamp"
say "installed wine prefix ($wine_version, Windows 10, bcryptprimitives.dll) into .tools/wine"
