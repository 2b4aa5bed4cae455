package instances

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel end an instance when the test process dies
// without running its cleanups.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
