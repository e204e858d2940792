# release.mk: release binaries, packages and installation. Included by the
# Makefile; also works alone: make -f release.mk dist.
#
#   make dist                 static binaries for every platform in dist/, and dist/SHA256SUMS
#   make deb rpm              packages for linux/amd64 and linux/arm64 in dist/ (nfpm)
#   make check-deb            list the .deb files and check they hold what they should
#   make install              the host's binary, units and settings under PREFIX (DESTDIR too)
#   make uninstall            remove what install installed (not /etc/default/eipclaim)
#
# nfpm is run with "go run" at a pinned version: it is not a dependency of
# the module, and go.mod is not touched. (v2.46.0 and later need modules from
# go.digitalxero.dev, which the Go module proxy this was built with refused.)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
# A version dpkg and rpm accept and order right: no leading v, no "-", and
# 0.0.0+git... when VERSION is not a release number.
# v1.2.3 -> 1.2.3; v1.2.3-4-gabc -> 1.2.3+4+gabc; v2.0.0-rc1 -> 2.0.0~rc1 (sorts
# before 2.0.0); 895fb63-dirty -> 0.0.0+git895fb63+dirty.
PKG_VERSION ?= $(shell echo '$(VERSION)' | sed -E 's/^v([0-9]+\.)/\1/; /^[0-9]+\.[0-9]/!s/^/0.0.0+git/; s/-(rc|alpha|beta)/~\1/; s/-/+/g')

DIST ?= dist
PLATFORMS ?= linux/amd64 linux/arm64 windows/amd64
DEB_ARCHES ?= amd64 arm64
GO ?= go
LDFLAGS = -s -w -X main.version=$(VERSION)

NFPM_VERSION ?= v2.45.2
NFPM ?= GOOS= GOARCH= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR ?= $(PREFIX)/share/doc/eipclaim
SYSCONFDIR ?= /etc
HOST_OS := $(shell $(GO) env GOOS)
HOST_ARCH := $(shell $(GO) env GOARCH)

UNITS = eipclaim.service eipclaim-hosts.service eipclaim-hosts.timer eipclaim-watch.service

# fixpaths rewrites the packaged paths of init/ files for PREFIX and SYSCONFDIR.
fixpaths = sed -e 's|/usr/bin/eipclaim|$(BINDIR)/eipclaim|g' \
	-e 's|/usr/share/doc/eipclaim|$(DOCDIR)|g' \
	-e 's|/etc/default/eipclaim|$(SYSCONFDIR)/default/eipclaim|g'

# sums writes dist/SHA256SUMS over every file in dist/ but itself.
define sums
	cd $(DIST) && rm -f SHA256SUMS && \
	files=$$(ls | grep -v '^SHA256SUMS$$') && \
	if command -v sha256sum >/dev/null; then sha256sum $$files; else shasum -a 256 $$files; fi > SHA256SUMS.tmp && \
	mv SHA256SUMS.tmp SHA256SUMS
endef

.PHONY: dist deb rpm packages check-deb install uninstall clean-dist

## dist: static binaries (eipclaim_OS_ARCH[.exe]) for PLATFORMS in dist/, and dist/SHA256SUMS
dist:
	@mkdir -p $(DIST)
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; \
		if [ "$$os" = windows ]; then ext=.exe; fi; \
		out=$(DIST)/eipclaim_$${os}_$${arch}$$ext; \
		echo "GOOS=$$os GOARCH=$$arch go build -o $$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -tags $(or $(GOTAGS),lambda.norpc) -trimpath -ldflags "$(LDFLAGS)" -o $$out ./cmd/eipclaim; \
	done
	@$(sums)
	@echo "$(DIST)/SHA256SUMS"

## deb: .deb packages for DEB_ARCHES in dist/ (needs dist)
deb: dist
	@set -e; for arch in $(DEB_ARCHES); do \
		PKG_ARCH=$$arch PKG_VERSION='$(PKG_VERSION)' $(NFPM) package --config packaging/nfpm.yaml --packager deb --target $(DIST)/; \
	done
	@$(sums)

## rpm: .rpm packages for DEB_ARCHES in dist/ (needs dist)
rpm: dist
	@set -e; for arch in $(DEB_ARCHES); do \
		PKG_ARCH=$$arch PKG_VERSION='$(PKG_VERSION)' $(NFPM) package --config packaging/nfpm.yaml --packager rpm --target $(DIST)/; \
	done
	@$(sums)

## packages: deb and rpm
packages: deb rpm

## check-deb: list each .deb in dist/ and check the files it must hold
check-deb:
	@set -e; found=; for deb in $(DIST)/*.deb; do \
		[ -e "$$deb" ] || continue; found=1; \
		echo "== $$deb"; dpkg-deb -c "$$deb"; \
		for f in ./usr/bin/eipclaim ./lib/systemd/system/eipclaim.service \
			./lib/systemd/system/eipclaim-hosts.service ./lib/systemd/system/eipclaim-hosts.timer ./lib/systemd/system/eipclaim-watch.service \
			./etc/default/eipclaim ./usr/share/doc/eipclaim/iam-policy.json; do \
			dpkg-deb -c "$$deb" | awk '{ print $$6 }' | grep -qx "$$f" || { echo "FAIL: $$deb lacks $$f"; exit 1; }; \
		done; \
		dpkg-deb -I "$$deb" conffiles | grep -qx /etc/default/eipclaim || { echo "FAIL: /etc/default/eipclaim is not a conffile"; exit 1; }; \
	done; \
	[ -n "$$found" ] || { echo "FAIL: no .deb in $(DIST)/: run make deb"; exit 1; }; \
	echo "check-deb: ok"

$(DIST)/eipclaim_$(HOST_OS)_$(HOST_ARCH):
	@mkdir -p $(DIST)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $@ ./cmd/eipclaim

## install: install the host's binary, the systemd units, the settings (kept if present) and docs under DESTDIR/PREFIX
install: $(DIST)/eipclaim_$(HOST_OS)_$(HOST_ARCH)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR)/docs $(DESTDIR)$(SYSCONFDIR)/default
	install -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/eipclaim
	install -m 0755 $(DIST)/eipclaim_$(HOST_OS)_$(HOST_ARCH) $(DESTDIR)$(BINDIR)/eipclaim
	@set -e; for u in $(UNITS); do \
		$(fixpaths) init/$$u > $(DESTDIR)$(UNITDIR)/$$u.tmp; \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp; mv $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u; \
		echo "installed $(DESTDIR)$(UNITDIR)/$$u"; \
	done
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/default/eipclaim ]; then \
		echo "kept $(DESTDIR)$(SYSCONFDIR)/default/eipclaim"; \
	else \
		install -m 0644 packaging/default/eipclaim $(DESTDIR)$(SYSCONFDIR)/default/eipclaim; \
		echo "installed $(DESTDIR)$(SYSCONFDIR)/default/eipclaim"; \
	fi
	install -m 0644 README.md docs/iam-policy.json $(DESTDIR)$(DOCDIR)/
	install -m 0644 docs/* $(DESTDIR)$(DOCDIR)/docs/
	$(fixpaths) init/release-on-stop.conf > $(DESTDIR)$(DOCDIR)/release-on-stop.conf
	$(fixpaths) init/rc.local > $(DESTDIR)$(DOCDIR)/rc.local
	chmod 0644 $(DESTDIR)$(DOCDIR)/release-on-stop.conf $(DESTDIR)$(DOCDIR)/rc.local
	install -m 0644 examples/* $(DESTDIR)$(DOCDIR)/examples/
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		systemctl daemon-reload; \
		echo "next: systemctl enable eipclaim.service (claims at boot); systemctl enable --now eipclaim-hosts.timer (hosts file)"; \
	fi

## uninstall: remove what install installed, except the settings in SYSCONFDIR
uninstall:
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		systemctl disable --now eipclaim-hosts.timer 2>/dev/null || true; \
		systemctl disable eipclaim.service 2>/dev/null || true; \
	fi
	rm -f $(DESTDIR)$(BINDIR)/eipclaim $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS))
	rm -rf $(DESTDIR)$(DOCDIR)
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

## clean-dist: remove dist/
clean-dist:
	rm -rf $(DIST)
