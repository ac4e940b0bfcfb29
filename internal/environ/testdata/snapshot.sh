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
# Brightbox names itself only by the serial's domain.
case $(cat /sys/class/dmi/id/product_serial 2>/dev/null) in
*.brightbox.com) echo "srv-redacted.brightbox.com" >"$root/sys/class/dmi/id/product_serial" ;;
esac
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
copy /proc/sys/kernel/version
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
{ tr '\0' '\n' </proc/1/environ | grep -E '^(container|product_name)=' | tr '\n' '\0' >"$root/proc/1/environ"; } 2>/dev/null
# proot: the tracer of this script is the tracer of drmfilter run beside it.
tracer=$(sed -n 's/^TracerPid:[[:space:]]*//p' /proc/self/status 2>/dev/null)
printf 'TracerPid:\t%s\n' "${tracer:-0}" >"$root/proc/self/status"
[ "${tracer:-0}" != 0 ] && copy "/proc/$tracer/comm"
for f in /.dockerenv /run/.containerenv /var/run/secrets/kubernetes.io; do mark "$f"; done
copy /run/host/container-manager
copy /run/systemd/container
# A private cgroup namespace (the files systemd's running_in_cgroupns reads).
[ -e /proc/self/ns/cgroup ] && mkdir -p "$root/proc/self/ns" && : >"$root/proc/self/ns/cgroup"
for f in cgroup.controllers cgroup.events cgroup.type systemd systemd/release_agent; do mark "/sys/fs/cgroup/$f"; done
mark /sys/kernel/cgroup/features
# Cloud signs beyond DMI (cloud-init's ds-identify): only that they exist,
# and the kernel command line only as the words that name a cloud.
for f in /dev/lxd/sock /native/.zonecontrol/metadata.sock /var/run/scaleway /etc/vultr \
	/root/provisioningConfiguration.cfg /var/lib/cloud/data/seed/bigstep/url /dev/disk/by-uuid/9796-932E; do
	mark "$f"
done
for l in CLOUDMD cloudmd METADATA metadata CONFIG-2 config-2; do mark "/dev/disk/by-label/$l"; done
for p in /sys/class/virtio-ports/*/name; do copy "$p"; done
if [ -r /proc/cmdline ]; then
	tr ' ' '\n' </proc/cmdline | grep -x -E 'scaleway|vultr' | tr '\n' ' ' >"$root/proc/cmdline"
fi

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
