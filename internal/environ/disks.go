package environ

import (
	"sort"
	"strconv"
	"strings"
)

// Disk kinds.
const (
	DiskVirtio           = "virtio"
	DiskXen              = "xen"
	DiskHyperV           = "hyperv"
	DiskVMware           = "vmware"
	DiskVirtualBox       = "virtualbox"
	DiskQEMU             = "qemu"
	DiskAWSEBS           = "aws-ebs"
	DiskAWSInstanceStore = "aws-instance-store"
	DiskGooglePD         = "google-pd"
	DiskGoogleLocalSSD   = "google-local-ssd"
	DiskParallels        = "parallels"
	DiskLoop             = "loop"
	DiskDeviceMapper     = "device-mapper"
	DiskMD               = "md-raid"
	DiskZram             = "zram"
	DiskRAM              = "ramdisk"
	DiskNBD              = "nbd"
	DiskPhysical         = "physical"
)

// Disk is one entry of /sys/block.
type Disk struct {
	// Name is the kernel name, such as "vda" or "nvme0n1".
	Name string `json:"name"`
	// Kind is one of the Disk* constants.
	Kind string `json:"kind"`
	// Virtual is true unless Kind is physical or a local instance disk
	// passed through to the guest.
	Virtual bool `json:"virtual"`
	// Vendor is device/vendor (SCSI vendor or PCI vendor id), trimmed.
	Vendor string `json:"vendor,omitempty"`
	// Model is device/model, trimmed.
	Model string `json:"model,omitempty"`
	// SizeBytes is the size (the size attribute counts 512-byte sectors).
	SizeBytes uint64 `json:"size_bytes"`
	// Removable is the removable attribute.
	Removable bool `json:"removable"`
	// DMName is the device-mapper name (dm/name) of dm-* devices.
	DMName string `json:"dm_name,omitempty"`
}

func readDisks(r *sysReader) []Disk {
	disks := []Disk{}
	for _, e := range r.dir("/sys/block") {
		name := e.Name()
		base := "/sys/block/" + name + "/"
		d := Disk{
			Name:      name,
			Vendor:    r.line(base + "device/vendor"),
			Model:     r.line(base + "device/model"),
			Removable: r.line(base+"removable") == "1",
		}
		if s := r.line(base + "size"); s != "" {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				r.note(base+"size", err)
			} else {
				d.SizeBytes = n * 512
			}
		}
		if strings.HasPrefix(name, "dm-") {
			d.DMName = r.line(base + "dm/name")
		}
		d.Kind = diskKind(name, d.Vendor, d.Model)
		d.Virtual = d.Kind != DiskPhysical && d.Kind != DiskAWSInstanceStore && d.Kind != DiskGoogleLocalSSD
		disks = append(disks, d)
	}
	sort.Slice(disks, func(i, j int) bool { return disks[i].Name < disks[j].Name })
	return disks
}

// diskKind decides from the kernel name first (drivers name their disks),
// then from the SCSI or NVMe vendor and model strings.
func diskKind(name, vendor, model string) string {
	switch {
	case strings.HasPrefix(name, "loop"):
		return DiskLoop
	case strings.HasPrefix(name, "dm-"):
		return DiskDeviceMapper
	case strings.HasPrefix(name, "zram"):
		return DiskZram
	case strings.HasPrefix(name, "md"):
		return DiskMD
	case strings.HasPrefix(name, "ram"):
		return DiskRAM
	case strings.HasPrefix(name, "nbd"):
		return DiskNBD
	case strings.HasPrefix(name, "vd"):
		return DiskVirtio
	case strings.HasPrefix(name, "xvd"):
		return DiskXen
	}
	switch {
	case strings.HasPrefix(model, "Amazon Elastic Block Store"):
		return DiskAWSEBS
	case strings.HasPrefix(model, "Amazon EC2 NVMe Instance Storage"):
		return DiskAWSInstanceStore
	case vendor == "Google" && strings.HasPrefix(model, "PersistentDisk"), strings.HasPrefix(model, "nvme_card-pd"):
		return DiskGooglePD
	case vendor == "Google" && strings.HasPrefix(model, "EphemeralDisk"), model == "nvme_card":
		return DiskGoogleLocalSSD
	case vendor == "Msft" && strings.HasPrefix(model, "Virtual Disk"):
		return DiskHyperV
	case strings.HasPrefix(vendor, "VMware") || vendor == "NECVMWar" || strings.HasPrefix(model, "VMware Virtual") || strings.HasPrefix(model, "VMware NVME"):
		return DiskVMware
	case strings.HasPrefix(model, "VBOX") || vendor == "VBOX":
		return DiskVirtualBox
	case vendor == "QEMU" || strings.HasPrefix(model, "QEMU"):
		return DiskQEMU
	case strings.HasPrefix(model, "Virtual disk"):
		// VMware's older SCSI model string, with a vendor of "VMware,".
		return DiskVMware
	case strings.HasPrefix(model, "Parallels") || strings.HasPrefix(vendor, "Parallels"):
		return DiskParallels
	}
	return DiskPhysical
}
