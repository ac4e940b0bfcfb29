#!/usr/bin/env python3
"""Writes the fixture roots under testdata/fixtures/ from the samples below.

Each case is a machine tree (only the files the detectors read), a case.json
(what CPUID said, the architecture, where the sample came from) and an
expected.json (the answer). Rerun after editing a sample:

    python3 internal/environ/testdata/mkfixtures.py

README.md beside this script says where each sample came from.
"""
import json, os, shutil

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")

DOCKER_ID = "3f4d8c2b9a1e7f6d5c4b3a29180f7e6d5c4b3a291807f6e5d4c3b2a1908f7e6d"
PODMAN_ID = "8b0bd4e4a1b8f2f3c9e0d6a7b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6"
CRIO_ID = "5a3d0b8e9f1c2d4e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6"
CTRD_ID = "e2a6d1f0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2"
NERD_ID = "1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b1a2f3e4d5c6b7a8f9e0d1c2b"
POD_UID = "2f1a6c0e-5b8d-4e3f-9a7c-1d2e3f4a5b6c"
AZ_TAG = "7783-7084-3265-9085-8269-3286-77"


def dmi(**kw):
    return {"sys/class/dmi/id/" + k: v + "\n" for k, v in kw.items()}


def block(name, size, vendor=None, model=None, removable="0"):
    d = {f"sys/block/{name}/size": f"{size}\n", f"sys/block/{name}/removable": removable + "\n"}
    if vendor is not None:
        d[f"sys/block/{name}/device/vendor"] = vendor + "\n"
    if model is not None:
        d[f"sys/block/{name}/device/model"] = model + "\n"
    return d


def acpi(oem):
    # 36-byte ACPI table header: signature, length, revision, checksum, OEM ID (10..15), OEM table ID ...
    hdr = b"DSDT" + (36).to_bytes(4, "little") + b"\x02\x00" + oem.encode().ljust(6) + b"TESTTBL " + b"\x00" * 14
    return {"sys/firmware/acpi/tables/DSDT": hdr}


def cpuinfo(vendor="GenuineIntel", flags="fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx lm constant_tsc rep_good nopl xtopology cpuid pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand"):
    return {"proc/cpuinfo": f"processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: 6\nmodel name\t: test\nflags\t\t: {flags}\n\n"}


def self_cgroup(*lines):
    return {"proc/self/cgroup": "".join(l + "\n" for l in lines)}


def environ(pid, **kw):
    return {f"proc/{pid}/environ": b"".join(f"{k}={v}".encode() + b"\0" for k, v in kw.items())}


PHYS_FLAGS = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov vmx smx est tm2 ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand lahf_lm"
GUEST_FLAGS = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss syscall nx lm constant_tsc rep_good nopl cpuid pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm"
GUEST_VMX = GUEST_FLAGS + " vmx"


def base(osrelease="6.1.0-18-amd64"):
    return {"proc/sys/kernel/osrelease": osrelease + "\n", "proc/self/cgroup": "0::/\n",
            "proc/version": f"Linux version {osrelease} (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian\n"}


def E(**kw):
    want = dict({"hypervisor": "none", "nested": False, "cloud": "none",
                 "container": "none", "isolation": "none", "problems": 0}, **kw)
    want.setdefault("physical", want["hypervisor"] == "none" and not want.get("xen", "").startswith("dom0"))
    return want

CASES = {}


def case(name, source, files, want, cpuid="", arch="amd64", vmx=False, svm=False, pid=0):
    CASES[name] = (source, files, want, {"cpuid_vendor": cpuid, "arch": arch, "vmx": vmx, "svm": svm, "pid": pid})


def merge(*ds):
    out = {}
    for d in ds:
        out.update(d)
    return out


# ---------------------------------------------------------------- physical
case("physical-dell-poweredge", "DMI strings of a Dell PowerEdge R740 as printed by dmidecode in public bug reports (Red Hat bugzilla, Ubuntu launchpad)",
     merge(base(), cpuinfo(flags=PHYS_FLAGS), dmi(sys_vendor="Dell Inc.", product_name="PowerEdge R740", product_version="", board_vendor="Dell Inc.", board_name="06WXJT", bios_vendor="Dell Inc.", bios_version="2.12.2", chassis_vendor="Dell Inc.", chassis_asset_tag=""),
           block("sda", 937703088, "ATA", "Samsung SSD 860"), block("nvme0n1", 1953525168, None, "Samsung SSD 970 EVO Plus 1TB"), block("sr0", 2097151, "TSSTcorp", "DVD+-RW SU-208GB", "1")),
     E(physical=True, disks={"sda": "physical", "nvme0n1": "physical", "sr0": "physical"}))
case("physical-thinkpad", "Lenovo ThinkPad X1 Carbon DMI strings (product_version carries the marketing name), from linux-hardware.org probes",
     merge(base(), cpuinfo(flags=PHYS_FLAGS), dmi(sys_vendor="LENOVO", product_name="20HRCTO1WW", product_version="ThinkPad X1 Carbon 5th", board_vendor="LENOVO", bios_vendor="LENOVO", bios_version="N1MET70W (1.55 )", chassis_vendor="LENOVO", chassis_asset_tag="No Asset Information"),
           block("nvme0n1", 1000215216, None, "SAMSUNG MZVLW512HMJP-000L7"), block("zram0", 8388608), block("loop0", 0), block("dm-0", 999000000)),
     E(physical=True, disks={"nvme0n1": "physical", "zram0": "zram", "loop0": "loop", "dm-0": "device-mapper"}))

# ---------------------------------------------------------------- KVM family
case("kvm-qemu-libvirt", "libvirt q35 guest with SeaBIOS: QEMU DMI strings and the BOCHS ACPI OEM id of QEMU's tables; CPUID KVMKVMKVM (systemd virt.c vm_table)",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="QEMU", product_name="Standard PC (Q35 + ICH9, 2009)", product_version="pc-q35-8.2", bios_vendor="SeaBIOS", bios_version="1.16.3-debian-1.16.3-2", chassis_vendor="QEMU"),
           acpi("BOCHS"), block("vda", 41943040, "0x1af4"), block("sda", 2097152, "QEMU", "QEMU HARDDISK"), block("sr0", 2097151, "QEMU", "QEMU DVD-ROM", "1")),
     E(hypervisor="kvm", vmm="qemu", disks={"vda": "virtio", "sda": "qemu", "sr0": "qemu"}), cpuid="KVMKVMKVM")
case("qemu-tcg", "QEMU without KVM (TCG): CPUID signature TCGTCGTCGTCG (systemd virt.c) with QEMU's DMI",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="QEMU", product_name="Standard PC (i440FX + PIIX, 1996)", bios_vendor="SeaBIOS"), block("vda", 20971520, "0x1af4")),
     E(hypervisor="qemu", vmm="qemu", disks={"vda": "virtio"}), cpuid="TCGTCGTCGTCG")
case("kvm-hyperv-enlightened", "QEMU/KVM guest with Hyper-V enlightenments: CPUID 'Linux KVM Hv' (systemd virt.c), nested VMX offered and KVM nested enabled",
     merge(base(), cpuinfo(flags=GUEST_VMX), dmi(sys_vendor="QEMU", product_name="Standard PC (Q35 + ICH9, 2009)"), {"sys/module/kvm_intel/parameters/nested": "Y\n"}, block("vda", 41943040, "0x1af4")),
     E(hypervisor="kvm", vmm="qemu", nested=True, disks={"vda": "virtio"}), cpuid="Linux KVM Hv", vmx=True)
case("firecracker", "captured on the drmfilter CI machine: no DMI, CPUID KVMKVMKVM, ACPI tables with OEM id FIRECK, virtio disk vda (vendor 0x1af4), kernel 6.18 -fc; no VMX, but /dev/kvm from the kvm_pvm module (nested through PVM)",
     merge(base("6.18.44-fc-v657"), cpuinfo(flags=GUEST_FLAGS), acpi("FIRECK"), block("vda", 536870912, "0x1af4"), block("zram0", 0), block("loop0", 0),
           {"dev/kvm": "", "sys/module/kvm_pvm/parameters/pvm_native": "N\n"}),
     E(hypervisor="kvm", vmm="firecracker", nested=True, disks={"vda": "virtio", "zram0": "zram", "loop0": "loop"}), cpuid="KVMKVMKVM")
case("cloud-hypervisor", "cloud-hypervisor guest: SMBIOS manufacturer 'Cloud Hypervisor', product 'cloud-hypervisor', ACPI OEM id CLOUDH (cloud-hypervisor source, vmm/src/acpi.rs and arch smbios)",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="Cloud Hypervisor", product_name="cloud-hypervisor"), acpi("CLOUDH"), block("vda", 4194304, "0x1af4")),
     E(hypervisor="kvm", vmm="cloud-hypervisor", disks={"vda": "virtio"}), cpuid="KVMKVMKVM")
case("kubevirt", "KubeVirt VMI: SMBIOS manufacturer KubeVirt, product None (KubeVirt docs, 'SMBIOS firmware'); systemd maps KubeVirt to kvm",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="KubeVirt", product_name="None", bios_vendor="KubeVirt"), block("vda", 10485760, "0x1af4")),
     E(hypervisor="kvm", vmm="kubevirt", disks={"vda": "virtio"}), cpuid="KVMKVMKVM")
case("kvm-arm64-fwcfg", "arm64 QEMU 'virt' machine without DMI: /proc/device-tree/fw-cfg@9020000 (systemd virt.c detect_vm_device_tree)",
     merge(base(), {"proc/device-tree/fw-cfg@9020000/compatible": b"qemu,fw-cfg-mmio\0", "proc/device-tree/compatible": b"linux,dummy-virt\0"}, block("vda", 20971520, "0x1af4")),
     E(hypervisor="qemu", disks={"vda": "virtio"}), arch="arm64")

# ---------------------------------------------------------------- Amazon
case("aws-nitro-m5", "EC2 Nitro m5.large: DMI vendor 'Amazon EC2', product name = instance type, board asset tag = instance id (AWS docs 'Identify EC2 Linux instances'); EBS volumes as NVMe 'Amazon Elastic Block Store'",
     merge(base("6.1.0-1028-aws"), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="Amazon EC2", product_name="m5.large", bios_vendor="Amazon EC2", bios_version="1.0", board_vendor="Amazon EC2", board_asset_tag="i-0a1b2c3d4e5f60718", chassis_vendor="Amazon EC2", chassis_asset_tag="Amazon EC2"),
           block("nvme0n1", 16777216, None, "Amazon Elastic Block Store"), block("nvme1n1", 209715200, None, "Amazon Elastic Block Store")),
     E(hypervisor="amazon", vmm="nitro", cloud="aws", instance_type="m5.large", instance_id="i-0a1b2c3d4e5f60718", disks={"nvme0n1": "aws-ebs", "nvme1n1": "aws-ebs"}), cpuid="KVMKVMKVM")
case("aws-metal", "EC2 m5d.metal bare-metal instance: product name ends in .metal, no hypervisor (systemd virt.c detect_vm_dmi); local NVMe 'Amazon EC2 NVMe Instance Storage'",
     merge(base("6.1.0-1028-aws"), cpuinfo(flags=PHYS_FLAGS), dmi(sys_vendor="Amazon EC2", product_name="m5d.metal", bios_vendor="Amazon EC2", board_vendor="Amazon EC2", chassis_asset_tag="Amazon EC2"),
           block("nvme0n1", 16777216, None, "Amazon Elastic Block Store"), block("nvme1n1", 1757812500, None, "Amazon EC2 NVMe Instance Storage")),
     E(physical=True, cloud="aws", bare_metal=True, instance_type="m5d.metal", disks={"nvme0n1": "aws-ebs", "nvme1n1": "aws-instance-store"}))
case("aws-xen-t2", "EC2 t2.micro on Xen HVM: DMI 'Xen'/'HVM domU', bios_version '4.11.amazon', /sys/hypervisor/uuid starting ec2 (AWS docs; cloud-init ds-identify)",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="Xen", product_name="HVM domU", product_version="4.11.amazon", bios_vendor="Xen", bios_version="4.11.amazon"),
           {"sys/hypervisor/type": "xen\n", "sys/hypervisor/uuid": "ec2e1916-9099-7caf-fd21-012345abcdef\n", "sys/hypervisor/guest_type": "HVM\n", "proc/xen/capabilities": ""},
           block("xvda", 16777216)),
     E(hypervisor="xen", xen="domU/hvm", cloud="aws", disks={"xvda": "xen"}), cpuid="XenVMMXenVMM")

# ---------------------------------------------------------------- Xen
case("xen-pv-domu", "Xen PV guest: no CPUID hypervisor bit, /proc/xen, /sys/hypervisor/type xen, guest_type PV (Documentation/ABI/stable/sysfs-hypervisor-xen)",
     merge(base(), {"proc/xen/capabilities": "", "sys/hypervisor/type": "xen\n", "sys/hypervisor/guest_type": "PV\n"}, block("xvda", 20971520)),
     E(hypervisor="xen", xen="domU/pv", disks={"xvda": "xen"}))
case("xen-pvh-domu", "Xen PVH guest: CPUID XenVMMXenVMM, /sys/hypervisor/guest_type PVH (Documentation/ABI/stable/sysfs-hypervisor-xen), no DMI",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), {"proc/xen/capabilities": "", "sys/hypervisor/type": "xen\n", "sys/hypervisor/guest_type": "PVH\n"}, block("xvda", 20971520)),
     E(hypervisor="xen", xen="domU/pvh", disks={"xvda": "xen"}), cpuid="XenVMMXenVMM")
case("xen-dom0", "Xen dom0 on a Supermicro server: /proc/xen/capabilities 'control_d' (systemd virt.c detect_vm_xen_dom0) - systemd reports none",
     merge(base(), cpuinfo(flags=PHYS_FLAGS), dmi(sys_vendor="Supermicro", product_name="SYS-1029P-WTR", board_vendor="Supermicro", bios_vendor="American Megatrends Inc."),
           {"proc/xen/capabilities": "control_d\n", "sys/hypervisor/type": "xen\n", "sys/hypervisor/guest_type": "PV\n"}, block("sda", 468862128, "ATA", "INTEL SSDSC2KB48")),
     E(xen="dom0/pv", disks={"sda": "physical"}))
case("xen-arm64", "Xen guest on arm64: /proc/device-tree/hypervisor/compatible 'xen,xen-4.17' (Linux Documentation/devicetree/bindings/arm/xen.txt)",
     merge(base(), {"proc/device-tree/hypervisor/compatible": b"xen,xen-4.17\0xen,xen\0"}, block("xvda", 8388608)),
     E(hypervisor="xen", xen="domU", disks={"xvda": "xen"}), arch="arm64")

# ---------------------------------------------------------------- Microsoft
case("azure-gen2", "Azure Gen2 VM: chassis asset tag 7783-7084-3265-9085-8269-3286-77 (cloud-init ds-identify is_azure_chassis), product_version 'Hyper-V UEFI Release v4.1', disks 'Msft Virtual Disk'",
     merge(base("6.5.0-1025-azure"), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="Microsoft Corporation", product_name="Virtual Machine", product_version="Hyper-V UEFI Release v4.1", board_vendor="Microsoft Corporation", board_name="Virtual Machine", bios_vendor="Microsoft Corporation", bios_version="Hyper-V UEFI Release v4.1", chassis_vendor="Microsoft Corporation", chassis_asset_tag=AZ_TAG),
           block("sda", 62914560, "Msft", "Virtual Disk"), block("sdb", 157286400, "Msft", "Virtual Disk")),
     E(hypervisor="microsoft", cloud="azure", disks={"sda": "hyperv", "sdb": "hyperv"}), cpuid="Microsoft Hv")
case("hyperv-nested", "on-premises Hyper-V Gen1 VM with nested virtualization on: DMI product_version 7.0, VMX offered, KVM took the enlightened VMCS",
     merge(base(), cpuinfo(flags=GUEST_VMX), dmi(sys_vendor="Microsoft Corporation", product_name="Virtual Machine", product_version="7.0", bios_vendor="American Megatrends Inc.", bios_version="090008", chassis_asset_tag="6418-8536-4263-0593-7458-0186-38"),
           {"sys/module/kvm_intel/parameters/enlightened_vmcs": "Y\n"}, block("sda", 266338304, "Msft", "Virtual Disk")),
     E(hypervisor="microsoft", nested=True, disks={"sda": "hyperv"}), cpuid="Microsoft Hv", vmx=True)
case("wsl2", "WSL 2: osrelease '5.15.153.1-microsoft-standard-WSL2' (Microsoft WSL issue 423, the documented test), Hyper-V CPUID, no DMI, virtual disks sd[a-c] 'Msft Virtual Disk'",
     merge(base("5.15.153.1-microsoft-standard-WSL2"), cpuinfo(flags=GUEST_FLAGS), block("sda", 794624, "Msft", "Virtual Disk"), block("sdc", 2147483648, "Msft", "Virtual Disk")),
     E(hypervisor="microsoft", container="wsl", runtime="wsl", isolation="namespace", disks={"sda": "hyperv", "sdc": "hyperv"}), cpuid="Microsoft Hv")
case("docker-desktop-wsl2", "Docker Desktop container on the WSL 2 kernel: osrelease '-microsoft-standard-WSL2' plus /.dockerenv and a docker cgroup; the engine's marker wins over WSL (systemd would say wsl)",
     merge(base("5.15.153.1-microsoft-standard-WSL2"), cpuinfo(flags=GUEST_FLAGS), {".dockerenv": ""}, self_cgroup(f"0::/docker/{DOCKER_ID}")),
     E(hypervisor="microsoft", container="docker", runtime="docker", container_id=DOCKER_ID, isolation="namespace"), cpuid="Microsoft Hv")
case("wsl1", "WSL 1: osrelease '4.4.0-19041-Microsoft' (Microsoft WSL issue 423); no Linux kernel, no /sys/block",
     merge(base("4.4.0-19041-Microsoft")),
     E(container="wsl", runtime="wsl", isolation="namespace", physical=True))

# ---------------------------------------------------------------- VMware, VirtualBox, Parallels, bhyve...
case("vmware", "VMware ESXi/Workstation guest: 'VMware, Inc.' / 'VMware Virtual Platform', CPUID VMwareVMware (VMware KB 1009458), SCSI disk 'VMware  Virtual disk'",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="VMware, Inc.", product_name="VMware Virtual Platform", product_version="None", board_vendor="Intel Corporation", board_name="440BX Desktop Reference Platform", bios_vendor="Phoenix Technologies LTD", bios_version="6.00", chassis_vendor="No Enclosure"),
           block("sda", 83886080, "VMware", "Virtual disk"), block("sr0", 2097151, "NECVMWar", "VMware SATA CD00", "1")),
     E(hypervisor="vmware", disks={"sda": "vmware", "sr0": "vmware"}), cpuid="VMwareVMware")
case("virtualbox-kvm-paravirt", "VirtualBox 7 guest with the KVM paravirtualization interface: CPUID says KVMKVMKVM but DMI says innotek GmbH/VirtualBox, so systemd answers oracle; disk 'VBOX HARDDISK'",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="innotek GmbH", product_name="VirtualBox", product_version="1.2", board_vendor="Oracle Corporation", board_name="VirtualBox", bios_vendor="innotek GmbH", bios_version="VirtualBox", chassis_vendor="Oracle Corporation"),
           block("sda", 52428800, "ATA", "VBOX HARDDISK"), block("sr0", 2097151, "VBOX", "CD-ROM", "1")),
     E(hypervisor="oracle", disks={"sda": "virtualbox", "sr0": "virtualbox"}), cpuid="KVMKVMKVM")
case("parallels", "Parallels Desktop guest: 'Parallels Software International Inc.' / 'Parallels Virtual Platform' (systemd virt.c DMI table), CPUID 'prl hyperv  '",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="Parallels Software International Inc.", product_name="Parallels Virtual Platform", bios_vendor="Parallels Software International Inc.")),
     E(hypervisor="parallels"), cpuid="prl hyperv  ")
case("bhyve", "FreeBSD bhyve guest: DMI BHYVE and CPUID 'bhyve bhyve ' (FreeBSD wiki bhyve; systemd virt.c)",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="FreeBSD", product_name="BHYVE", bios_vendor="BHYVE", bios_version="14.0"), block("vda", 20971520, "0x1af4")),
     E(hypervisor="bhyve", disks={"vda": "virtio"}), cpuid="bhyve bhyve ")
case("qnx", "QNX hypervisor guest: CPUID 'QNXQVMBSQG' (systemd virt.c vm_table), no DMI",
     merge(base(), cpuinfo(flags=GUEST_FLAGS)), E(hypervisor="qnx"), cpuid="QNXQVMBSQG")
case("acrn", "ACRN guest: CPUID 'ACRNACRNACRN' (projectacrn.org; systemd virt.c)",
     merge(base(), cpuinfo(flags=GUEST_FLAGS)), E(hypervisor="acrn"), cpuid="ACRNACRNACRN")
case("bochs", "Bochs emulator: DMI 'Bochs' in every vendor field (systemd virt.c DMI table), no CPUID signature",
     merge(base(), cpuinfo(vendor="GenuineIntel"), dmi(sys_vendor="Bochs", product_name="Bochs", bios_vendor="Bochs")),
     E(hypervisor="bochs"))
case("uml", "User-mode Linux: /proc/cpuinfo 'vendor_id : User Mode Linux' (arch/um cpuinfo; systemd virt.c detect_vm_uml)",
     {"proc/sys/kernel/osrelease": "6.6.0\n", "proc/self/cgroup": "0::/\n", "proc/cpuinfo": "processor\t: 0\nvendor_id\t: User Mode Linux\nmodel name\t: UML\nmode\t\t: skas\n", "sys/block/ubda/size": "2097152\n"},
     E(hypervisor="uml", disks={"ubda": "physical"}))
case("apple-virtualization", "macOS Virtualization.framework arm64 guest: DMI 'Apple Virtualization Generic Platform' (systemd virt.c DMI table)",
     merge(base(), dmi(sys_vendor="Apple Inc.", product_name="Apple Virtualization Generic Platform", bios_vendor="Apple Inc."), block("vda", 134217728, "0x1af4")),
     E(hypervisor="apple", disks={"vda": "virtio"}), arch="arm64")
case("powervm", "IBM PowerVM LPAR: /proc/device-tree/ibm,partition-name and hmc-managed? (systemd virt.c detect_vm_device_tree)",
     merge(base(), {"proc/device-tree/ibm,partition-name": b"lpar01\0", "proc/device-tree/hmc-managed?": b"", "proc/device-tree/compatible": b"IBM,9009-42A\0"}, block("sda", 209715200, "AIX", "VDASD")),
     E(hypervisor="powervm", disks={"sda": "physical"}), arch="ppc64le")
case("zvm", "IBM Z guest of z/VM: /proc/sysinfo 'VM00 Control Program: z/VM 7.3.0' (s390 sysinfo; systemd virt.c detect_vm_zvm)",
     merge(base(), {"proc/sysinfo": "Manufacturer:         IBM\nType:                 3931\nLPAR Name:            LP01\nVM00 Name:            LINUX01\nVM00 Control Program: z/VM    7.3.0\n"}, block("dasda", 14424480, None, None)),
     E(hypervisor="zvm", disks={"dasda": "physical"}), arch="s390x")
case("kvm-s390", "KVM guest on IBM Z: /proc/sysinfo 'VM00 Control Program: KVM/Linux'",
     merge(base(), {"proc/sysinfo": "Manufacturer:         IBM\nVM00 Name:            guest\nVM00 Control Program: KVM/Linux\n"}, block("vda", 10485760, "0x1af4")),
     E(hypervisor="kvm", disks={"vda": "virtio"}), arch="s390x")

# ---------------------------------------------------------------- clouds
case("gcp", "Google Compute Engine: DMI 'Google'/'Google Compute Engine', product_serial GoogleCloud-... (cloud-init ds-identify dscheck_GCE), disk 'Google PersistentDisk'",
     merge(base("6.1.0-23-cloud-amd64"), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="Google", product_name="Google Compute Engine", bios_vendor="Google", bios_version="Google", board_vendor="Google", chassis_vendor="Google", product_serial="GoogleCloud-8F3C1A2B4D5E6F708192A3B4C5D6E7F8"),
           block("sda", 20971520, "Google", "PersistentDisk"), block("nvme0n1", 786432000, None, "nvme_card")),
     E(hypervisor="google", cloud="gcp", disks={"sda": "google-pd", "nvme0n1": "google-local-ssd"}), cpuid="KVMKVMKVM")
case("oracle-cloud-vm", "OCI VM shape: QEMU DMI with chassis asset tag OracleCloud.com (cloud-init DataSourceOracle notes)",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="QEMU", product_name="Standard PC (i440FX + PIIX, 1996)", bios_vendor="SeaBIOS", chassis_asset_tag="OracleCloud.com"),
           block("sda", 97677312, "ORACLE", "BlockVolume")),
     E(hypervisor="kvm", vmm="qemu", cloud="oracle", disks={"sda": "physical"}), cpuid="KVMKVMKVM")
case("oracle-cloud-bm", "OCI bare-metal shape: Oracle server DMI with chassis asset tag OracleCloud.com (cloud-init: bare metal and VMs share the tag); not VirtualBox",
     merge(base(), cpuinfo(flags=PHYS_FLAGS), dmi(sys_vendor="Oracle Corporation", product_name="ORACLE SERVER X7-2c", board_vendor="Oracle Corporation", bios_vendor="American Megatrends Inc.", chassis_asset_tag="OracleCloud.com")),
     E(physical=True, cloud="oracle", bare_metal=True))
case("alibaba", "Alibaba Cloud ECS: DMI 'Alibaba Cloud'/'Alibaba Cloud ECS' (cloud-init ds-identify dscheck_AliYun)",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="Alibaba Cloud", product_name="Alibaba Cloud ECS", product_version="pc-i440fx-2.1", bios_vendor="SeaBIOS"), block("vda", 83886080, "0x1af4")),
     E(hypervisor="kvm", cloud="alibaba", disks={"vda": "virtio"}), cpuid="KVMKVMKVM")
case("digitalocean", "DigitalOcean droplet: DMI 'DigitalOcean'/'Droplet' (cloud-init DataSourceDigitalOcean)",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="DigitalOcean", product_name="Droplet", product_version="20171212", bios_vendor="DigitalOcean"), block("vda", 52428800, "0x1af4")),
     E(hypervisor="kvm", cloud="digitalocean", disks={"vda": "virtio"}), cpuid="KVMKVMKVM")
case("hetzner", "Hetzner Cloud server: DMI sys_vendor 'Hetzner', product 'vServer' (cloud-init ds-identify dscheck_Hetzner)",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="Hetzner", product_name="vServer", product_version="20171111", bios_vendor="Hetzner"), block("sda", 80003072, "QEMU", "QEMU HARDDISK")),
     E(hypervisor="kvm", cloud="hetzner", disks={"sda": "qemu"}), cpuid="KVMKVMKVM")
case("openstack", "OpenStack Nova guest: DMI 'OpenStack Foundation'/'OpenStack Nova' (cloud-init ds-identify dscheck_OpenStack)",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="OpenStack Foundation", product_name="OpenStack Nova", product_version="27.1.0", bios_vendor="SeaBIOS"), block("vda", 41943040, "0x1af4")),
     E(hypervisor="kvm", cloud="openstack", disks={"vda": "virtio"}), cpuid="KVMKVMKVM")
case("ibm-cloud-vpc", "IBM Cloud VPC virtual server: chassis asset tag 'ibmcloud' (IBM Cloud docs; cloud-init IBMCloud datasource)",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="QEMU", product_name="Standard PC (i440FX + PIIX, 1996)", bios_vendor="SeaBIOS", chassis_asset_tag="ibmcloud"), block("vda", 209715200, "0x1af4")),
     E(hypervisor="kvm", vmm="qemu", cloud="ibm", disks={"vda": "virtio"}), cpuid="KVMKVMKVM")
case("exoscale", "Exoscale compute instance: DMI product name 'Exoscale Compute Platform' (cloud-init ds-identify dscheck_Exoscale)",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="Exoscale", product_name="Exoscale Compute Platform", bios_vendor="SeaBIOS"), block("vda", 104857600, "0x1af4")),
     E(hypervisor="kvm", cloud="exoscale", disks={"vda": "virtio"}), cpuid="KVMKVMKVM")
case("scaleway", "Scaleway instance: DMI sys_vendor 'Scaleway' (cloud-init ds-identify dscheck_Scaleway)",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="Scaleway", product_name="SCW-DEV1-S", bios_vendor="EFI Development Kit II / OVMF"), block("sda", 39062500, "SCW", "b_ssd")),
     E(hypervisor="kvm", cloud="scaleway", disks={"sda": "physical"}), cpuid="KVMKVMKVM")

# ---------------------------------------------------------------- containers
case("docker-cgroup-v1", "Docker on a cgroup v1 host: /.dockerenv (moby issue 18355) and /proc/self/cgroup lines '/docker/<id>'",
     merge(base(), {".dockerenv": ""}, self_cgroup(f"12:memory:/docker/{DOCKER_ID}", f"11:cpu,cpuacct:/docker/{DOCKER_ID}", f"1:name=systemd:/docker/{DOCKER_ID}")),
     E(container="docker", runtime="docker", container_id=DOCKER_ID, isolation="namespace"))
case("docker-cgroupns", "Docker on a cgroup v2 host with a private cgroup namespace: cgroup '0::/', the ID from the /etc/hostname bind mount source in mountinfo",
     merge(base(), {".dockerenv": "", "proc/self/mountinfo": f"780 650 0:52 / / rw,relatime master:300 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/ABC:/var/lib/docker/overlay2/l/DEF,upperdir=/var/lib/docker/overlay2/x/diff,workdir=/var/lib/docker/overlay2/x/work\n801 780 254:1 /var/lib/docker/containers/{DOCKER_ID}/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw\n"}),
     E(container="docker", runtime="docker", container_id=DOCKER_ID, isolation="namespace"))
case("podman", "rootful Podman: /run/.containerenv and container=podman in PID 1's environment (podman issues 6192, 3586), hostname bind mount from overlay-containers/<id>",
     merge(base(), {"run/.containerenv": "engine=\"podman-4.9.3\"\nname=\"web\"\n"}, environ(1, container="podman", PATH="/usr/bin"),
           {"proc/self/mountinfo": f"600 500 0:60 / / rw - overlay overlay rw\n610 600 254:1 /var/lib/containers/storage/overlay-containers/{PODMAN_ID}/userdata/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n"}),
     E(container="podman", runtime="podman", container_id=PODMAN_ID, isolation="namespace"))
case("podman-cgroup-v2", "Podman without a cgroup namespace, systemd driver: '0::/machine.slice/libpod-<id>.scope/container' (podman docs)",
     merge(base(), self_cgroup(f"0::/machine.slice/libpod-{PODMAN_ID}.scope/container")),
     E(container="podman", runtime="podman", container_id=PODMAN_ID, isolation="namespace"))
case("containerd-nerdctl", "nerdctl/containerd with the systemd driver: '0::/system.slice/nerdctl-<id>.scope'",
     merge(base(), self_cgroup(f"0::/system.slice/nerdctl-{NERD_ID}.scope")),
     E(container="containerd", runtime="containerd", container_id=NERD_ID, isolation="namespace"))
case("crio-k8s-pod", "OpenShift/CRI-O pod, systemd driver, burstable QoS: kubepods-burstable-pod<uid>.slice/crio-<id>.scope, service account secrets, KUBERNETES_SERVICE_HOST (Kubernetes docs)",
     merge(base(), self_cgroup(f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_UID.replace('-', '_')}.slice/crio-{CRIO_ID}.scope"),
           environ("self", KUBERNETES_SERVICE_HOST="10.96.0.1", HOSTNAME="web-0"), {"var/run/secrets/kubernetes.io/serviceaccount/token": "x"}),
     E(container="kubernetes", runtime="cri-o", container_id=CRIO_ID, pod_uid=POD_UID, qos="burstable", isolation="namespace"))
case("crio-pod-cgroupns", "CRI-O pod on a cgroup v2 node with private cgroup namespaces ('0::/'): kubelet's /var/lib/kubelet/pods/<uid>/etc-hosts and containers/storage hostname bind mounts (the sandbox's ID, so no container ID is claimed)",
     merge(base(), self_cgroup("0::/"), environ("self", KUBERNETES_SERVICE_HOST="10.96.0.1"),
           {"proc/self/mountinfo": f"900 800 0:80 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/containers/storage/overlay/l/AB\n"
                                   f"910 900 254:1 /var/lib/kubelet/pods/{POD_UID}/etc-hosts /etc/hosts rw,relatime - ext4 /dev/vda1 rw\n"
                                   f"911 900 0:25 /containers/storage/overlay-containers/{PODMAN_ID}/userdata/hostname /etc/hostname rw,nosuid,nodev - tmpfs tmpfs rw\n"}),
     E(container="kubernetes", runtime="cri-o", pod_uid=POD_UID, isolation="namespace"))
case("eks-pod-cgroupfs", "EKS pod on a cgroup v1 node with the cgroupfs driver, best-effort QoS: '/kubepods/besteffort/pod<uid>/<id>' on an EC2 Nitro m6i.large",
     merge(base("5.10.219-208.866.amzn2.x86_64"), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="Amazon EC2", product_name="m6i.large", bios_vendor="Amazon EC2"),
           self_cgroup(f"11:memory:/kubepods/besteffort/pod{POD_UID}/{CTRD_ID}", f"1:name=systemd:/kubepods/besteffort/pod{POD_UID}/{CTRD_ID}"),
           environ("self", KUBERNETES_SERVICE_HOST="172.20.0.1"), block("nvme0n1", 41943040, None, "Amazon Elastic Block Store")),
     E(hypervisor="amazon", vmm="nitro", cloud="aws", instance_type="m6i.large", container="kubernetes", container_id=CTRD_ID, pod_uid=POD_UID, qos="besteffort", isolation="namespace", disks={"nvme0n1": "aws-ebs"}), cpuid="KVMKVMKVM")
case("aks-pod", "AKS pod on a cgroup v2 node, systemd driver, guaranteed QoS: kubepods-pod<uid>.slice/cri-containerd-<id>.scope on Azure",
     merge(base("5.15.0-1064-azure"), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="Microsoft Corporation", product_name="Virtual Machine", product_version="Hyper-V UEFI Release v4.1", chassis_asset_tag=AZ_TAG),
           self_cgroup(f"0::/kubepods.slice/kubepods-pod{POD_UID.replace('-', '_')}.slice/cri-containerd-{CTRD_ID}.scope"), {"var/run/secrets/kubernetes.io/serviceaccount/namespace": "default"}),
     E(hypervisor="microsoft", cloud="azure", container="kubernetes", runtime="containerd", container_id=CTRD_ID, pod_uid=POD_UID, qos="guaranteed", isolation="namespace"), cpuid="Microsoft Hv")
case("lxc", "LXC/LXD system container: container=lxc in PID 1's environment, cgroup 'lxc.payload.web01' (LXC 4 cgroup layout)",
     merge(base(), environ(1, container="lxc"), self_cgroup("0::/lxc.payload.web01/init.scope")),
     E(container="lxc", runtime="lxc", container_id="web01", isolation="namespace"))
case("systemd-nspawn", "systemd-nspawn container: /run/host/container-manager 'systemd-nspawn' (systemd CONTAINER_INTERFACE), cgroup machine-<name>.scope",
     merge(base(), {"run/host/container-manager": "systemd-nspawn\n", "run/systemd/container": "systemd-nspawn\n"}, self_cgroup("0::/machine.slice/machine-debian\\x2dbuild.scope/payload")),
     E(container="systemd-nspawn", runtime="systemd-nspawn", container_id="debian-build", isolation="namespace"))
case("openvz", "OpenVZ container: /proc/vz without /proc/bc (systemd virt.c detect_container)",
     merge(base("2.6.32-042stab145.3"), {"proc/vz/veinfo": "  101     0    12 10.0.0.5\n"}),
     E(container="openvz", runtime="openvz", isolation="namespace", physical=True))
case("gvisor", "Docker with runtime=runsc: /.dockerenv plus gVisor's fixed /proc/version ('#1 SMP Sun Jan 10 15:06:54 PST 2016', gVisor pkg/sentry)",
     merge({"proc/sys/kernel/osrelease": "4.4.0\n", "proc/version": "Linux version 4.4.0 #1 SMP Sun Jan 10 15:06:54 PST 2016\n", "proc/self/cgroup": "0::/\n", ".dockerenv": ""}),
     E(container="docker", runtime="docker", isolation="vm", sandbox="gvisor", physical=True))
case("kata-pod", "Kata Containers pod: KVM guest whose container root is the virtiofs share 'kataShared' (Kata architecture docs), k8s service account",
     merge(base("6.1.62"), cpuinfo(flags=GUEST_FLAGS), dmi(sys_vendor="QEMU", product_name="Standard PC (Q35 + ICH9, 2009)"), self_cgroup("0::/"),
           {"proc/self/mountinfo": f"100 1 0:25 /{CTRD_ID}/rootfs / rw,relatime - virtiofs kataShared rw\n", "var/run/secrets/kubernetes.io/serviceaccount/token": "x"},
           environ("self", KUBERNETES_SERVICE_HOST="10.0.0.1")),
     E(hypervisor="kvm", vmm="qemu", container="kubernetes", isolation="vm", sandbox="kata"), cpuid="KVMKVMKVM")
case("host-pid-lookup", "a host with a Docker container: --pid 4242 names a process whose cgroup is system.slice/docker-<id>.scope (the layout this CI machine shows for a test cgroup)",
     merge(base(), cpuinfo(flags=GUEST_FLAGS), {"proc/4242/stat": "4242 (nginx) S 4200 4242 4242 0 -1 4194560 1000 0 0 0 5 3 0 0 20 0 1 0 987654 12345678 900 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n",
                                                    "proc/4242/cgroup": f"0::/system.slice/docker-{DOCKER_ID}.scope\n", "proc/4242/environ": b"PATH=/usr/sbin\0"}),
     E(hypervisor="kvm", container="docker", runtime="docker", container_id=DOCKER_ID, isolation="namespace"), cpuid="KVMKVMKVM", pid=4242)


def write(name, files):
    d = os.path.join(OUT, name, "root")
    for p, content in files.items():
        full = os.path.join(d, p)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        with open(full, "wb") as f:
            f.write(content)


def main():
    for name, (source, files, want, cpu) in CASES.items():
        # Only the cases defined here are rewritten; captured ones stay.
        shutil.rmtree(os.path.join(OUT, name), ignore_errors=True)
        write(name, files)
        meta = dict(cpu, source=source)
        with open(os.path.join(OUT, name, "case.json"), "w") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")
        with open(os.path.join(OUT, name, "expected.json"), "w") as f:
            json.dump(want, f, indent=2, sort_keys=True)
            f.write("\n")
    write_readme()
    print(len(CASES), "cases")


README_HEAD = """# environ test data

Written by `mkfixtures.py` (rerun it after editing a sample; it rewrites
its own cases under `fixtures/` and this file). `TestFixtures` walks every
case.

To add a real machine, run `sh snapshot.sh fixtures/<name> [CPUID_SIGNATURE]`
on it (as root), copy the directory back, and write its `expected.json` by
hand from what the machine is known to be; `TestSnapshotRoundTrip` runs the
same script on the test machine and checks that the capture answers like the
live machine.

## Layout

- `fixtures/<case>/root/` - the machine's files, only those the detectors
  read: `/sys/class/dmi/id/*`, `/sys/block/*`, `/sys/hypervisor/*`,
  `/sys/firmware/acpi/tables/DSDT` (36-byte header only), `/proc/cpuinfo`,
  `/proc/xen`, `/proc/device-tree`, `/proc/sysinfo`, `/proc/self/cgroup`,
  `/proc/self/mountinfo`, `/proc/self/status` (its TracerPid, for proot),
  `/proc/1/environ`, marker files (`/.dockerenv`, `/run/.containerenv`,
  `/run/host/container-manager`, ...), the cgroup-namespace files under
  `/sys/fs/cgroup`, and the cloud signs beyond DMI that ds-identify reads
  (`/dev/lxd/sock`, `/dev/disk/by-label/*`, `/sys/class/virtio-ports/*/name`,
  the words `scaleway`/`vultr` of `/proc/cmdline`, ...). The parity tables
  in `../parity_test.go` build such trees in memory, one per anchor id.
- `fixtures/<case>/case.json` - what is not a file: the CPUID leaf
  0x40000000 signature (`cpuid_vendor`, empty = hypervisor bit clear), VMX/SVM,
  the architecture, the PID to inspect (0 = `/proc/self`) and the source.
- `fixtures/<case>/expected.json` - the answer: systemd-style hypervisor
  name, VMM, physical, Xen role/mode, nested, cloud, bare metal, container
  name, runtime, container ID, pod UID and QoS, isolation, sandbox, the kind
  of every disk, and the number of problems (0 for every clean sample).
- `cgroup-corpus.json` - one cgroup line per runtime and driver shape with
  the expected runtime, ID, pod and QoS; `TestCgroupCorpus` walks it.

## Where the samples come from

The strings are those published in the references named below (systemd's
`src/basic/virt.c` tables, cloud-init's `tools/ds-identify` and datasource
docs, the cloud providers' documentation, the kernel's sysfs ABI documents,
public bug reports and hardware probes). They were typed into the trees from
those references rather than captured byte for byte, except `firecracker`,
which was captured on the drmfilter CI machine (its ACPI header, osrelease and
disk list are real). Serial numbers, UUIDs, instance and container IDs are
made up in the published formats. Replacing a case by a real capture made with
a snapshot script is welcome: keep the answer in expected.json.

| case | source of the sample |
| --- | --- |
"""


def write_readme():
    path = os.path.join(HERE, "README.md")
    # Sections written by hand after the generated ones (such as the
    # runtimes/ corpus) are kept: they start at the first "## " heading
    # that README_HEAD does not have.
    ours = {l for l in README_HEAD.splitlines() if l.startswith("## ")}
    kept = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
        for i, line in enumerate(old.splitlines(keepends=True)):
            if line.startswith("## ") and line.rstrip("\n") not in ours:
                kept = "".join(old.splitlines(keepends=True)[i:])
                break
    with open(path, "w") as f:
        f.write(README_HEAD)
        for name, (source, _, _, _) in sorted(CASES.items()):
            f.write(f"| `{name}` | {source} |\n")
        if kept:
            f.write("\n" + kept)


main()
