package agent

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/proc"
)

// Programs that run code they open without an execve of it. fanotify sees
// only an open: an exec rule would not apply to `ld.so ./tool`,
// `sh x.sh` or `python3 x.py` unless the agent recognises the opener.
var (
	// loaderNames are basenames of dynamic loaders (glibc, musl).
	loaderNames = []string{"ld-linux*.so*", "ld-musl-*.so*", "ld.so", "ld64.so*", "ld-*.so"}
	// shellNames are the shells among them: for a shell, -e is an option,
	// not inline code.
	shellNames = []string{"sh", "dash", "bash", "ash", "zsh", "ksh", "mksh", "fish", "csh", "tcsh"}
	// interpreterNames are basenames of shells and script interpreters.
	interpreterNames = append(slices.Clone(shellNames), "busybox",
		"python", "python[0-9]*", "pypy*", "perl", "perl[0-9]*", "ruby", "ruby[0-9]*", "node", "nodejs",
		"php", "php[0-9]*", "lua", "lua[0-9]*", "luajit", "tclsh*", "wish*", "Rscript", "awk", "gawk", "mawk", "nawk")
)

func nameIn(exe string, globs []string) bool {
	base := path.Base(exe)
	for _, g := range globs {
		if ok, _ := path.Match(g, base); ok {
			return true
		}
	}
	return false
}

// runsCode says how the job's open runs the opened file's code, or "" if
// it does not: the dynamic loader opening an ELF file (`ld.so ./tool`),
// or an interpreter opening the script its command line names, the first
// argument that is not an option (`sh x.sh`, `python3 -u x.py`,
// `busybox sh x.sh`). The script is recognised by identity (device and
// inode of the argument looked up in the process's own root and working
// directory), not by name. An interpreter reading code from its standard
// input or from -c, or a program reading a file and then running its text,
// is not seen: only a read deny keeps such content from being run.
func (a *Agent) runsCode(p *proc.Process, j *job) string {
	pid := int(j.ev.Pid)
	if p.Thread != 0 {
		pid = int(p.Thread)
	}
	switch {
	case nameIn(p.Exe, loaderNames):
		var magic [4]byte
		if n, err := unix.Pread(int(j.ev.Fd), magic[:], 0); err == nil && n == 4 && string(magic[:]) == "\x7fELF" {
			return "run by the dynamic loader " + p.Exe
		}
	case nameIn(p.Exe, interpreterNames):
		if a.namedScript(pid, p.Exe, j) {
			return "run as a script by " + p.Exe
		}
	}
	return ""
}

// namedScript reports whether the first operand of process pid's command
// line is the job's file.
func (a *Agent) namedScript(pid int, exe string, j *job) bool {
	procDir := filepath.Join(a.cfg.HostRoot, "proc", strconv.Itoa(pid))
	raw, err := os.ReadFile(filepath.Join(procDir, "cmdline"))
	if err != nil {
		return false
	}
	args := strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00")
	if len(args) < 2 {
		return false
	}
	args = args[1:]
	name := path.Base(exe)
	if name == "busybox" && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name = args[0]
		args = args[1:] // the applet: busybox sh x.sh
	}
	shell := nameIn(name, shellNames)
	awk := strings.HasSuffix(name, "awk")
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			continue
		}
		if awk && arg == "-f" && i+1 < len(args) {
			// awk -f PROGFILE: the script is the option's value.
			return a.sameFile(procDir, args[i+1], j)
		}
		if strings.HasPrefix(arg, "-") || strings.HasPrefix(arg, "+") {
			switch {
			case arg == "-c" || arg == "-m" || (!shell && (arg == "-e" || arg == "-E")):
				return false // inline code or a module: no script operand
			case arg == "-W" || arg == "-X" || arg == "-o" || arg == "-O" || arg == "+O" || arg == "-I" ||
				arg == "--rcfile" || arg == "--init-file" || (awk && arg == "-v"):
				i++ // the option's value
			}
			continue
		}
		if awk {
			return false // awk's first operand is its program text
		}
		return a.sameFile(procDir, arg, j)
	}
	return false
}

// sameFile reports whether arg, as process procDir would resolve it, is
// the job's file.
func (a *Agent) sameFile(procDir, arg string, j *job) bool {
	at := filepath.Join(procDir, "cwd", arg)
	if filepath.IsAbs(arg) {
		at = filepath.Join(procDir, "root", arg)
	}
	var st unix.Stat_t
	if unix.Stat(at, &st) != nil {
		return false
	}
	return st.Dev == j.st.Dev && st.Ino == j.st.Ino
}
