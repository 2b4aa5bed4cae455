package redistest

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill redis-server when the test process
// dies without running its cleanups (a panic, a timeout, a kill).
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
