package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// maxSlaveDepth bounds the walk through device-mapper and md slaves
// (dm-crypt on LVM on a USB disk is three levels).
const maxSlaveDepth = 4

// Removable reports whether block device major:minor is removable media, by
// reading sysfs under root (Documentation/ABI/stable/sysfs-block):
//
//   - <root>/sys/dev/block/MAJ:MIN is a symlink into /sys/devices; a path
//     segment "usbN" in its target means the device hangs off a USB bus
//     (USB sticks and USB disks, including those whose removable flag is 0);
//   - the disk's "removable" attribute is 1 (for a partition, the parent
//     disk's): floppies, optical drives, card readers;
//   - the disk's device/type is "SD" (MMC subsystem: an SD card, where
//     "MMC" would be soldered eMMC);
//   - for device-mapper and md devices (dm-crypt, LVM, RAID), any device
//     listed in "slaves" is removable by the rules above.
//
// provider is ProviderUSB, ProviderSDCard or ProviderRemovableDevice, and
// reason names the sysfs evidence. Major 0 (no block device) answers false.
// A missing sysfs entry is an error: the caller cannot tell. An empty root
// means "/".
func Removable(root string, major, minor uint32) (removable bool, provider Provider, reason string, err error) {
	if major == 0 {
		return false, "", "", nil
	}
	if root == "" {
		root = "/"
	}
	name := fmt.Sprintf("%d:%d", major, minor)
	dir, err := resolveLink(root, filepath.Join(root, "sys", "dev", "block", name))
	if err != nil {
		return false, "", "", fmt.Errorf("removable check of block device %s: %w", name, err)
	}
	removable, provider, reason = checkBlockDir(root, dir, name, 0)
	return removable, provider, reason, nil
}

// resolveLink resolves a sysfs symlink, keeping the result under root.
func resolveLink(root, link string) (string, error) {
	target, err := os.Readlink(link)
	if err != nil {
		return "", err
	}
	if filepath.IsAbs(target) {
		return filepath.Join(root, target), nil
	}
	return filepath.Join(filepath.Dir(link), target), nil
}

// checkBlockDir applies the rules of Removable to a resolved
// /sys/devices/.../block/X[/Y] directory.
func checkBlockDir(root, dir, name string, depth int) (bool, Provider, string) {
	sysRoot := filepath.Join(root, "sys")
	rel := "/sys" + strings.TrimPrefix(dir, sysRoot)
	if bus := usbSegment(strings.TrimPrefix(dir, sysRoot)); bus != "" {
		return true, ProviderUSB, fmt.Sprintf("block device %s on USB bus %s (%s)", name, bus, rel)
	}
	disk := dir
	if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
		disk = filepath.Dir(dir)
	}
	if readAttr(filepath.Join(disk, "removable")) == "1" {
		return true, ProviderRemovableDevice, fmt.Sprintf("block device %s with removable=1 (%s/removable)", name, "/sys"+strings.TrimPrefix(disk, sysRoot))
	}
	if readAttr(filepath.Join(disk, "device", "type")) == "SD" {
		return true, ProviderSDCard, fmt.Sprintf("block device %s is an SD card (%s/device/type is SD)", name, "/sys"+strings.TrimPrefix(disk, sysRoot))
	}
	if depth >= maxSlaveDepth {
		return false, "", ""
	}
	slaves, _ := os.ReadDir(filepath.Join(dir, "slaves"))
	for _, s := range slaves {
		sub, err := resolveLink(root, filepath.Join(dir, "slaves", s.Name()))
		if err != nil {
			continue
		}
		if ok, p, why := checkBlockDir(root, sub, s.Name(), depth+1); ok {
			return true, p, fmt.Sprintf("block device %s stacked on %s", name, why)
		}
	}
	return false, "", ""
}

// usbSegment returns the first path segment of the form usbN, or "".
func usbSegment(p string) string {
	for _, seg := range strings.Split(p, "/") {
		if len(seg) > 3 && strings.HasPrefix(seg, "usb") && isDigits(seg[3:]) {
			return seg
		}
	}
	return ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// readAttr reads a small sysfs attribute, trimmed; "" when unreadable.
func readAttr(name string) string {
	b, err := os.ReadFile(name)
	if err != nil || len(b) > 64 {
		return ""
	}
	return strings.TrimSpace(string(b))
}
