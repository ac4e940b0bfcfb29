#!/bin/sh
# snapshot.sh DIR [CPUID_VENDOR]
#
# Copies into DIR/root the files internal/environ reads, so that a machine
# (an Azure VM, an EC2 instance, a pod, a WSL distribution...) can become a
# fixture or be inspected elsewhere with
#   drmfilter env --root DIR/root --cpuid-vendor "$(jq -r .cpuid_vendor DIR/case.json)" --arch ARCH
# It writes DIR/case.json too. CPUID is not a file: pass the leaf 0x40000000
# signature as the second argument, or let `drmfilter env -o json` (if on
# PATH) say it. Serial numbers and UUIDs are copied only as far as the
# detectors need them (their first 12 characters); PID 1's environment only
# as its container= variable. Run it as root to get the root-only files
# (SMBIOS table, ACPI headers, /proc/1/environ).
set -u
out=${1:?usage: snapshot.sh DIR [CPUID_VENDOR]}
vendor=${2-}
root="$out/root"
mkdir -p "$root"

copy() { # copy FILE [BYTES]: copy one file (or its first BYTES bytes) if readable
	[ -r "$1" ] && [ -f "$1" ] || return 0
	mkdir -p "$root$(dirname "$1")"
	if [ -n "${2-}" ]; then head -c "$2" "$1" >"$root$1" 2>/dev/null; else cat "$1" >"$root$1" 2>/dev/null; fi
}
mark() { # mark PATH: record that PATH exists, as an empty file or directory
	if [ -d "$1" ]; then mkdir -p "$root$1"; elif [ -e "$1" ]; then mkdir -p "$root$(dirname "$1")"; : >"$root$1"; fi
}

for f in sys_vendor product_name product_version board_vendor board_name board_asset_tag bios_vendor bios_version chassis_vendor chassis_asset_tag; do
	copy /sys/class/dmi/id/$f
done
for f in product_serial product_uuid; do
	if [ -r /sys/class/dmi/id/$f ]; then
		mkdir -p "$root/sys/class/dmi/id"
		head -c 12 /sys/class/dmi/id/$f >"$root/sys/class/dmi/id/$f" 2>/dev/null
	fi
done
copy /sys/firmware/dmi/entries/0-0/raw 64
copy /sys/firmware/acpi/tables/DSDT 36
copy /sys/firmware/acpi/tables/FACP 36
for f in type guest_type properties/features; do copy /sys/hypervisor/$f; done
if [ -r /sys/hypervisor/uuid ]; then mkdir -p "$root/sys/hypervisor"; head -c 3 /sys/hypervisor/uuid >"$root/sys/hypervisor/uuid"; fi
mark /proc/xen
copy /proc/xen/capabilities
mark /proc/vz
mark /proc/bc
copy /proc/sysinfo
copy /proc/cpuinfo
copy /proc/version
copy /proc/sys/kernel/osrelease
copy /proc/device-tree/hypervisor/compatible
copy /proc/device-tree/compatible
mark /proc/device-tree/ibm,partition-name
mark "/proc/device-tree/hmc-managed?"
mark /proc/device-tree/chosen/qemu,graphic-width
for d in /proc/device-tree/*fw-cfg*; do mark "$d"; done
for m in kvm_intel kvm_amd; do
	copy /sys/module/$m/parameters/nested
	copy /sys/module/$m/parameters/enlightened_vmcs
done
mark /sys/module/kvm_pvm
mark /dev/kvm
for b in /sys/block/*; do
	[ -e "$b" ] || continue
	for f in size removable device/vendor device/model dm/name; do copy "$b/$f"; done
	mkdir -p "$root$b"
done
mkdir -p "$root/proc/self" "$root/proc/1"
cat /proc/self/cgroup >"$root/proc/self/cgroup" 2>/dev/null
cat /proc/self/mountinfo >"$root/proc/self/mountinfo" 2>/dev/null
{ tr '\0' '\n' </proc/self/environ | grep -E '^KUBERNETES_SERVICE_HOST=' | tr '\n' '\0' >"$root/proc/self/environ"; } 2>/dev/null
{ tr '\0' '\n' </proc/1/environ | grep -E '^container=' | tr '\n' '\0' >"$root/proc/1/environ"; } 2>/dev/null
for f in /.dockerenv /run/.containerenv /var/run/secrets/kubernetes.io; do mark "$f"; done
copy /run/host/container-manager
copy /run/systemd/container

if [ -z "$vendor" ] && command -v drmfilter >/dev/null 2>&1; then
	vendor=$(drmfilter env -o json --no-mounts | sed -n 's/^ *"cpuid_vendor": "\(.*\)",*$/\1/p' | head -n 1)
fi
arch=$(uname -m)
cat >"$out/case.json" <<JSON
{
  "cpuid_vendor": "$vendor",
  "arch": "$arch",
  "vmx": false,
  "svm": false,
  "pid": 0,
  "source": "snapshot.sh on $(uname -n), $(date -u +%Y-%m-%d)"
}
JSON
echo "snapshot written to $out" >&2
