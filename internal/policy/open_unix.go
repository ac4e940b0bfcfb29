//go:build unix

package policy

import "syscall"

// openNoBlock are the flags readFile adds when it opens a policy file: a
// named pipe swapped in after the check must not block the open, and a
// symlink swapped in must not be followed (open(2): O_NONBLOCK,
// O_NOFOLLOW). For a regular file neither changes anything.
const openNoBlock = syscall.O_NONBLOCK | syscall.O_NOFOLLOW
