#!/bin/sh
# eipclaim package postinstall (deb postinst, rpm %post): make systemd see the
# units and, on the first install only, enable the claim at boot. Nothing is
# started: the claim runs at the next boot, or with "systemctl start eipclaim".
set -e

first_install=no
case "$1" in
configure) [ -z "$2" ] && first_install=yes ;; # deb: $2 is the version upgraded from
1) first_install=yes ;;                          # rpm: 1 install, 2 upgrade
esac

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
# "systemctl enable" only creates links, so it also works in an image build
# (a chroot without a running systemd), which is where it matters most.
if [ "$first_install" = yes ] && command -v systemctl >/dev/null 2>&1; then
	systemctl enable eipclaim.service || true
fi
exit 0
