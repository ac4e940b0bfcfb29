#!/usr/bin/env bash
# Builds the kube-apiserver that the Kubernetes integration tests start
# (internal/testutil/kubeapi), and makes sure etcd is installed.
#
# The binary is built from the Go module proxy, once, into a cache directory
# outside the repository, keyed by version:
#   ${DRMFILTER_KUBE_CACHE:-/var/cache/drmfilter}/kube-apiserver-v1.37.2/kube-apiserver
# If it is already there, nothing is built. The build happens in a throwaway
# module in a temp dir that requires k8s.io/kubernetes and replaces each
# k8s.io staging module that k8s.io/kubernetes requires at v0.0.0 with its
# published v0.37.2 release. It takes about 10 minutes and 2.8 GB of memory.
#
# etcd comes from Debian's etcd-server package (installed with apt when
# missing and running as root).
#
# Prints the binary's path as the last line of stdout on success.
# Environment: DRMFILTER_KUBE_CACHE (cache root), KUBE_VERSION (default
# v1.37.2; the staging modules follow as v0.<minor>.<patch>).
set -euo pipefail

kube_version="${KUBE_VERSION:-v1.37.2}"
staging_version="v0.${kube_version#v1.}"
cache_root="${DRMFILTER_KUBE_CACHE:-/var/cache/drmfilter}"
dest_dir="$cache_root/kube-apiserver-$kube_version"
dest="$dest_dir/kube-apiserver"

log() { echo "kube-apiserver.sh: $*" >&2; }

# etcd: the tests take it from PATH.
if ! command -v etcd >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ]; then
		log "etcd missing: installing Debian's etcd-server"
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >&2
	else
		log "etcd missing and not root to install etcd-server; the tests will need it on PATH"
	fi
fi
if command -v etcd >/dev/null 2>&1; then
	log "etcd: $(command -v etcd) ($(etcd --version 2>/dev/null | head -n1))"
fi

if [ -x "$dest" ]; then
	log "cached: $dest"
	echo "$dest"
	exit 0
fi

mkdir -p "$dest_dir"
# One build at a time per cache directory; a second caller waits and then
# finds the binary.
exec 9>"$dest_dir/.lock"
if ! flock -n 9; then
	log "another build holds $dest_dir/.lock; waiting for it"
	flock 9
fi
if [ -x "$dest" ]; then
	log "built meanwhile by another run: $dest"
	echo "$dest"
	exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/drmfilter-kube-apiserver.XXXXXX")
trap 'rm -rf "$work" "$dest_dir/.kube-apiserver.tmp.$$"' EXIT
cd "$work"

# The throwaway module decides its own flags: CI's GOFLAGS=-mod=readonly
# applies to the repository, not to this module, and no workspace applies.
export GOFLAGS="-mod=mod -buildvcs=false"
export GOWORK=off
export GO111MODULE=on

start=$(date +%s)
log "building kube-apiserver $kube_version into $dest (about 10 minutes, 2.8 GB of memory)"
log "step 1/4: fetching k8s.io/kubernetes@$kube_version's go.mod"
go mod init drmfilter.local/kube-apiserver-build >/dev/null 2>&1
gomod=$(go mod download -json "k8s.io/kubernetes@$kube_version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
if [ -z "$gomod" ] || [ ! -f "$gomod" ]; then
	log "could not find the go.mod of k8s.io/kubernetes@$kube_version"
	exit 1
fi

# Every k8s.io module required at v0.0.0 is a staging module, served as
# v0.<minor>.<patch>. The sample-* modules are not published and not needed.
mapfile -t staging < <(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" { print $1 }' "$gomod" | grep -v '^k8s\.io/sample-' | sort -u)
if [ "${#staging[@]}" -eq 0 ]; then
	log "no k8s.io staging modules at v0.0.0 in $gomod; layout changed?"
	exit 1
fi
log "step 2/4: replacing ${#staging[@]} staging modules with $staging_version: ${staging[*]#k8s.io/}"
go mod edit -require="k8s.io/kubernetes@$kube_version"
for m in "${staging[@]}"; do
	go mod edit -replace="$m=$m@$staging_version"
done

log "step 3/4: resolving dependencies of k8s.io/kubernetes/cmd/kube-apiserver"
go get "k8s.io/kubernetes/cmd/kube-apiserver@$kube_version" >&2

log "step 4/4: compiling (go build -trimpath, CGO_ENABLED=0)"
ldflags="-s -w"
ldflags+=" -X k8s.io/component-base/version.gitVersion=$kube_version"
ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
ldflags+=" -X k8s.io/component-base/version.gitMinor=$(echo "$kube_version" | cut -d. -f2)"
ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
out="$dest_dir/.kube-apiserver.tmp.$$"
if ! CGO_ENABLED=0 go build -trimpath -ldflags="$ldflags" -o "$out" k8s.io/kubernetes/cmd/kube-apiserver; then
	log "CGO_ENABLED=0 build failed; retrying with the default cgo setting"
	go build -trimpath -ldflags="$ldflags" -o "$out" k8s.io/kubernetes/cmd/kube-apiserver
fi
"$out" --version >&2
mv -f "$out" "$dest"

log "done in $(($(date +%s) - start)) s: $dest ($(du -h "$dest" | cut -f1))"
echo "$dest"
