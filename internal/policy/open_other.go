//go:build !unix

package policy

// openNoBlock is empty where there are no named pipes to block on; the
// type of the file is still checked before and after opening it.
const openNoBlock = 0
