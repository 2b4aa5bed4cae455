//go:build !linux

package instances

import "os/exec"

func setPdeathsig(*exec.Cmd) {}
