# hull: build, install and test.
#   make install   build everything and install it under $(PREFIX)
#   make stage1    rkt's stage1 image, $(BUILD)/stage1-hull.aci (hull-stage1 + busybox pause)
#   make test      lint, unit tests, then end-to-end tests booting real microVMs
#   make bench-boot  boot benchmark: hull-vmm vs QEMU microvm, side by side
#   make bench-net   network benchmark: crun vs QEMU microvm vs hull (iperf3, TCP RR)
#   make bench-cri   pods through containerd's CRI plugin: hull vs runc (start, memory, 10 at once)
#   make engines   Podman, containerd and Docker driving hull (tests/engines/run)
#   make rt-validation  OCI runtime-tools validation suite: hull, runc, crun side by side

PREFIX      ?= /usr/local
BUILD       := build
HOST_TARGET := x86_64-unknown-linux-gnu
CARGO       ?= cargo
RELEASE     := target/release
AGENT       := target/$(HOST_TARGET)/release/hull-agent
KERNEL      := $(BUILD)/kernel/vmlinux
INITRAMFS   := $(BUILD)/initramfs.cpio
STAGE1_ACI  := $(BUILD)/stage1-hull.aci
DEB_PKGS    := libseccomp-dev build-essential flex bison bc libelf-dev libssl-dev cpio linux-source-6.12 qemu-system-x86 busybox-static protobuf-compiler

.PHONY: all build deps binaries agent kernel initramfs stage1 install test lint unit e2e engines cri-client rt-validation bench-boot bench-container bench-net bench-cri bench-engines clean

all: build

build: binaries kernel initramfs stage1

# Debian packages the build and the tests need (installed only when missing).
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; }; \
	fi

binaries: deps
	$(CARGO) build --release --locked -p vmm -p runtime -p rootfs-builder

# The agent is PID 1 of the guest: a static binary, no loader, no libc.so.
agent: deps
	LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=/usr/lib/x86_64-linux-gnu RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release --locked --target $(HOST_TARGET) -p agent
	@if readelf -l $(AGENT) | grep -q 'program interpreter'; then echo "$(AGENT) is not static" >&2; exit 1; fi

kernel: deps
	guest-kernel/build.sh $(BUILD)/kernel

initramfs: agent binaries
	mkdir -p $(BUILD)
	$(RELEASE)/hull-rootfs-builder --agent $(AGENT) --output $(INITRAMFS)

# rkt's stage1 image: the hull-stage1 entrypoints and a static busybox as the
# pod's pause process (rkt run --stage1-path=$(PREFIX)/share/hull/stage1-hull.aci).
stage1: deps
	$(CARGO) build --release --locked -p hull-stage1
	stage1/build-aci.sh $(RELEASE)/hull-stage1 /bin/busybox $(STAGE1_ACI)

# Files are replaced by rename, never rewritten in place, so a VM starting
# while an install runs reads either the old file or the new one.
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/hull
	@set -e; put() { install -m $$1 $$2 $$3.new && mv -f $$3.new $$3; }; \
	put 0755 $(RELEASE)/hull $(DESTDIR)$(PREFIX)/bin/hull; \
	put 0755 $(RELEASE)/hull-vmm $(DESTDIR)$(PREFIX)/bin/hull-vmm; \
	put 0644 $(KERNEL) $(DESTDIR)$(PREFIX)/share/hull/vmlinux; \
	put 0644 $(INITRAMFS) $(DESTDIR)$(PREFIX)/share/hull/initramfs.cpio; \
	put 0644 $(STAGE1_ACI) $(DESTDIR)$(PREFIX)/share/hull/stage1-hull.aci; \
	echo "installed $(PREFIX)/bin/{hull,hull-vmm} $(PREFIX)/share/hull/{vmlinux,initramfs.cpio,stage1-hull.aci}"

test: lint unit e2e engines

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit: deps
	$(CARGO) test --workspace --locked --exclude hull-e2e

e2e: build
	tests/run-e2e

engines: build cri-client
	tests/engines/run

# The CRI client the engine suite's cri.sh drives containerd's CRI plugin with.
cri-client: deps
	$(CARGO) build --release --locked -p hull-cri-test

# Not part of test: a comparison, not a pass/fail gate.
rt-validation: build
	tests/runtime-tools/run

bench-engines: build
	bench/engines.sh

bench-boot: build
	bench/run-boot

bench-container: build
	bench/run-container

bench-net: build
	bench/run-net

bench-cri: build cri-client
	bench/cri.sh

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
