package proxy

import "syscall"

var syscallEMFILE = syscall.EMFILE
