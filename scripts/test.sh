#!/usr/bin/env bash
# The test suite as CI runs it, for anyone: installs what the tests need
# (Debian packages; a kube-apiserver and etcd built once into a cache), then
# runs every test with the race detector. Run it as root, or the privileged
# tests (fanotify, mounts, cgroups, containerd) skip with their reason;
# under CI=true they fail instead of skipping. Extra arguments go to
# `go test` (for example -run TestName, or a package instead of ./...).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== setup"
go version
# Packages the privileged tests use: mount and unshare (util-linux), and a
# static busybox to build container root filesystems from.
need=()
command -v mount >/dev/null 2>&1 || need+=(mount)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v busybox >/dev/null 2>&1 || need+=(busybox-static)
# A real containerd for the CRI client's test against a live runtime.
command -v containerd >/dev/null 2>&1 || need+=(containerd)
# The package tests: dpkg-deb and dpkg come with Debian; rpm reads and
# installs the .rpm into a scratch root; shellcheck checks install.sh and
# the maintainer scripts.
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg)
command -v rpm >/dev/null 2>&1 || need+=(rpm)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
# C helpers of the tests (threads racing an exec, a main thread that exits).
command -v gcc >/dev/null 2>&1 || need+=(gcc)
# The environment detection's live test compares with systemd-detect-virt.
command -v systemd-detect-virt >/dev/null 2>&1 || need+=(systemd)
# The qemu guest tests (internal/testutil/guest): qemu boots the guest
# kernel with the test binary in a cpio initramfs, with mkfs.ext4 in it.
# qemu without its recommends (GUI, other machines' firmware) boots them.
command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)
command -v cpio >/dev/null 2>&1 || need+=(cpio)
need_norecommends=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need_norecommends+=(qemu-system-x86)
if [ "${#need[@]}" -gt 0 ] || [ "${#need_norecommends[@]}" -gt 0 ]; then
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
		if [ "${#need_norecommends[@]}" -gt 0 ]; then
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_norecommends[@]}"
		fi
	else
		echo "missing ${need[*]} ${need_norecommends[*]} and not root to install them" >&2
	fi
fi

echo "== kube-apiserver and etcd (Kubernetes integration tests)"
# Built once into a cache outside the clone (about 10 minutes the first time);
# internal/testutil/kubeapi starts them. Without root and without a cached
# binary there is nothing to do here, and the tests say what is missing.
kube_apiserver="${DRMFILTER_KUBE_CACHE:-/var/cache/drmfilter}/kube-apiserver-v1.37.2/kube-apiserver"
if [ "$(id -u)" = 0 ] || [ -x "$kube_apiserver" ]; then
	kube_apiserver=$(.ci/kube-apiserver.sh | tail -n1)
	export DRMFILTER_KUBE_APISERVER="$kube_apiserver"
fi

echo "== guest kernel (qemu guest tests)"
# A pinned Debian kernel, downloaded once into a cache outside the clone (a
# 47 MB package, seconds); internal/testutil/guest boots it. The guest
# tests need root, so without root there is nothing to do here.
if [ "$(id -u)" = 0 ]; then
	guest_kernel=$(.ci/guest-kernel.sh | tail -n1)
	export DRMFILTER_GUEST_KERNEL="$guest_kernel"
fi

echo "== generated BPF objects"
# internal/bpflsm's committed object and bindings must be what its sources
# give (installs clang, llvm and libbpf-dev when missing and root).
if [ "$(id -u)" = 0 ] || command -v clang >/dev/null 2>&1; then
	scripts/bpf-generate.sh --check
else
	echo "not root and no clang: the generated BPF objects are not checked" >&2
fi

echo "== go test"
if [ "$#" -eq 0 ]; then
	set -- ./...
fi
if [ "$(id -u)" != 0 ]; then
	echo "not root: the privileged tests skip (run with sudo to test what CI tests)" >&2
fi
# 60 minutes: a qemu guest suite takes 12-15 minutes under emulation, and
# boots once more if its guest kernel panics (internal/testutil/guest).
go test -race -count=1 -timeout 60m "$@"

# Tests that change machine-wide settings (fanotify's max_queued_events)
# run alone, one package at a time, after everything else: run beside the
# other packages' tests they would change what those see.
if [ "$*" = "./..." ]; then
	echo "== go test (serial: tests that change machine-wide settings)"
	DRMFILTER_SERIAL_TESTS=1 go test -race -count=1 -timeout 10m -p 1 -run 'Serial$' ./...
fi
