package agent

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// openByHandle opens name through a file handle, as a process could to
// reach a file without any path: the agent must decide it all the same.
func openByHandle(name string) error {
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, name, 0)
	if err != nil {
		return fmt.Errorf("name_to_handle_at: %w", err)
	}
	mnt, err := os.Open(filepath.Dir(name))
	if err != nil {
		return err
	}
	defer mnt.Close()
	fd, err := unix.OpenByHandleAt(int(mnt.Fd()), h, unix.O_RDONLY)
	if err != nil {
		return fmt.Errorf("open_by_handle_at: %w", err)
	}
	unix.Close(fd)
	return nil
}
