#!/usr/bin/env bash
# Regenerates internal/bpflsm's BPF object and its Go bindings
# (lsm_bpfel.o, lsm_bpfel.go) from bpf/*.c with bpf2go, as
# internal/bpflsm/gen.go's go:generate line says. They are committed, so
# that building drmfilter needs no clang.
#
#   scripts/bpf-generate.sh          regenerate them in the working tree
#   scripts/bpf-generate.sh --check  regenerate them in a temporary copy of
#                                    the working tree (whose files are left
#                                    alone) and fail, naming the files that
#                                    differ, unless the copy's are the
#                                    working tree's byte for byte
#
# .ci/run runs the check, so that CI fails when the committed objects are
# stale. The bytes depend on the compiler: the committed ones come from
# Debian 12's clang 14 (clang, llvm and libbpf-dev), which this script
# installs when it is missing and it runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
case "${1:-}" in
--check) check=true ;;
"") ;;
*)
	echo "usage: $0 [--check]" >&2
	exit 2
	;;
esac

pkg=internal/bpflsm
generated=("$pkg/lsm_bpfel.go" "$pkg/lsm_bpfel.o")

# The toolchain: clang compiles, llvm-strip (llvm) strips the DWARF, and
# libbpf-dev has the bpf_helpers.h family the programs include.
need=()
command -v clang >/dev/null 2>&1 || need+=(clang)
command -v llvm-strip >/dev/null 2>&1 || need+=(llvm)
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
if [ "${#need[@]}" -gt 0 ]; then
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
	else
		echo "missing ${need[*]} and not root to install them" >&2
		exit 1
	fi
fi
clang --version | head -n1

if ! "$check"; then
	go generate "./$pkg"
	echo "regenerated ${generated[*]}"
	exit 0
fi

# The copy holds the working tree's files (tracked and untracked, but not
# ignored ones) at another path: the bytes must not depend on where the
# clone is.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/drmfilter-bpf-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do
		# Files deleted in the working tree but not yet in the index.
		if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
	done |
	tar --null --no-recursion -T - -cf - | tar -xf - -C "$tmp"
# Remove the objects from the copy first, so that a generator that writes
# nothing cannot pass the check.
for f in "${generated[@]}"; do
	rm -f "$tmp/$f"
done
(cd "$tmp" && go generate "./$pkg")

stale=()
for f in "${generated[@]}"; do
	if [ ! -e "$tmp/$f" ]; then
		echo "bpf2go did not write $f" >&2
		stale+=("$f")
	elif ! cmp -s "$f" "$tmp/$f"; then
		stale+=("$f")
	fi
done
if [ "${#stale[@]}" -gt 0 ]; then
	echo "stale generated BPF files (the sources or the compiler changed): ${stale[*]}" >&2
	echo "regenerate them with scripts/bpf-generate.sh and commit the result" >&2
	exit 1
fi
echo "the generated BPF files are up to date: ${generated[*]}"
