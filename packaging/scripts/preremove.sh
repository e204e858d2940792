#!/bin/sh
# eipclaim package preremove (deb prerm, rpm %preun): on removal, not on
# upgrade, disable the units and stop the hosts timer. eipclaim.service is
# not stopped: stopping it would run a release-on-stop drop-in and give the
# address away; the address stays where it is.
set -e

case "$1" in
remove | purge | 0) ;; # deb: remove; rpm: 0 packages left
*) exit 0 ;;
esac

if command -v systemctl >/dev/null 2>&1; then
	if [ -d /run/systemd/system ]; then
		systemctl stop eipclaim-hosts.timer eipclaim-hosts.service eipclaim-watch.service || true
	fi
	systemctl disable eipclaim.service eipclaim-hosts.timer eipclaim-watch.service || true
fi
exit 0
