#!/bin/sh
# eipclaim package postremove (deb postrm, rpm %postun): make systemd forget
# the removed units.
set -e

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
