#!/usr/bin/env bash
# Fetches the Linux kernel that the qemu guest tests boot
# (internal/testutil/guest): the host kernel refuses to load BPF LSM
# programs, so internal/bpflsm is tested inside a guest instead.
#
# The kernel is a pinned Debian package (trixie-backports' cloud flavour:
# ext4 built in, loop as a module, BPF LSM, BTF, a quarter of the generic
# flavour's download). It is downloaded once and unpacked without
# installing, into a cache directory outside the repository keyed by the
# kernel release:
#   ${DRMFILTER_GUEST_CACHE:-/var/cache/drmfilter}/guest-kernel/<release>/
#     vmlinuz, config, lib/modules/<release>/..., PACKAGE (name=version)
# If it is already there, nothing is downloaded. apt runs with a private
# sources list, lists and cache in a temp dir: the machine's apt
# configuration is neither read nor changed (only its trusted keys are used).
#
# If the pinned package is no longer served, it fails and lists the
# linux-image-6.18 packages that are: it never takes another one silently.
# Change the pin here and guest.KernelRelease in
# internal/testutil/guest/guest.go together.
#
# Prints the directory as the last line of stdout on success.
# Environment: DRMFILTER_GUEST_CACHE (cache root).
set -euo pipefail

release="6.18.15+deb13-cloud-amd64"
package="linux-image-$release"
version="6.18.15-1~bpo13+1"
cache_root="${DRMFILTER_GUEST_CACHE:-/var/cache/drmfilter}"
dest="$cache_root/guest-kernel/$release"

log() { echo "guest-kernel.sh: $*" >&2; }

if [ -f "$dest/vmlinuz" ] && [ -d "$dest/lib/modules/$release" ]; then
	log "cached: $dest"
	echo "$dest"
	exit 0
fi

mkdir -p "$cache_root/guest-kernel"
# One download at a time per cache; a second caller waits and then finds it.
exec 9>"$cache_root/guest-kernel/.lock"
if ! flock -n 9; then
	log "another run holds $cache_root/guest-kernel/.lock; waiting for it"
	flock 9
fi
if [ -f "$dest/vmlinuz" ] && [ -d "$dest/lib/modules/$release" ]; then
	log "fetched meanwhile by another run: $dest"
	echo "$dest"
	exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/drmfilter-guest-kernel.XXXXXX")
trap 'rm -rf "$work"' EXIT
# apt's download user (_apt) must be able to write where it downloads.
chmod 0755 "$work"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/dl" "$work/unpacked"
if id _apt >/dev/null 2>&1; then
	chown _apt "$work/dl"
fi
cat >"$work/sources.list" <<'EOF'
deb http://deb.debian.org/debian trixie-backports main
deb http://deb.debian.org/debian trixie main
EOF
apt_opts=(
	-o "Dir::Etc::sourcelist=$work/sources.list"
	-o "Dir::Etc::sourceparts=/nonexistent"
	-o "Dir::State::Lists=$work/lists"
	-o "Dir::Cache=$work/cache"
	# Only the package lists: no translations, Contents or AppStream data.
	-o "Acquire::Languages=none"
	-o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
	-o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
	-o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
	-o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
)

start=$(date +%s)
log "fetching the package lists of trixie and trixie-backports"
apt-get -qq "${apt_opts[@]}" update >&2

# madison lists "package | version | source"; the exact version must be there.
if ! apt-cache "${apt_opts[@]}" madison "$package" 2>/dev/null | awk -F' [|] ' -v v="$version" '$2 == v { found = 1 } END { exit !found }'; then
	log "the pinned kernel $package=$version is not available; these are:"
	apt-cache "${apt_opts[@]}" search '^linux-image-6\.18' | sort >&2 || true
	for p in $(apt-cache "${apt_opts[@]}" search --names-only '^linux-image-6\.18.*cloud-amd64$' | cut -d' ' -f1); do
		apt-cache "${apt_opts[@]}" madison "$p" >&2 || true
	done
	log "update the pin in .ci/guest-kernel.sh and guest.KernelRelease together"
	exit 1
fi

log "downloading $package=$version"
(cd "$work/dl" && apt-get -qq "${apt_opts[@]}" download "$package=$version" >&2)
deb=$(find "$work/dl" -name '*.deb' -print -quit)
log "unpacking $(basename "$deb") ($(du -h "$deb" | cut -f1))"
dpkg-deb -x "$deb" "$work/unpacked"

# Debian trixie ships modules under /usr/lib/modules, older ones under
# /lib/modules; the cache always has lib/modules.
modules="$work/unpacked/usr/lib/modules/$release"
[ -d "$modules" ] || modules="$work/unpacked/lib/modules/$release"
if [ ! -f "$work/unpacked/boot/vmlinuz-$release" ] || [ ! -d "$modules" ]; then
	log "$(basename "$deb") has no boot/vmlinuz-$release or modules/$release"
	exit 1
fi
tmp="$dest.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/lib/modules"
mv "$work/unpacked/boot/vmlinuz-$release" "$tmp/vmlinuz"
mv "$work/unpacked/boot/config-$release" "$tmp/config"
mv "$modules" "$tmp/lib/modules/$release"
echo "$package=$version" >"$tmp/PACKAGE"
rm -rf "$dest"
mv "$tmp" "$dest"

log "done in $(($(date +%s) - start)) s: $dest ($(du -sh "$dest" | cut -f1))"
echo "$dest"
