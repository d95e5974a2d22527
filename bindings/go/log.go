// SPDX-License-Identifier: LGPL-2.1-or-later

package btrfslayer

/*
#include <btrfslayer.h>
#include "shim.h"
*/
import "C"

import (
	"sync"
	"sync/atomic"
)

// Log levels: syslog(3) priorities, as the library passes them to the
// logger.
const (
	LogErr     = C.BTRFSLAYER_LOG_ERR
	LogWarning = C.BTRFSLAYER_LOG_WARNING
	LogInfo    = C.BTRFSLAYER_LOG_INFO
	LogDebug   = C.BTRFSLAYER_LOG_DEBUG
)

var (
	loggerMu sync.Mutex // serialises SetLogger
	logger   atomic.Pointer[func(level int, msg string)]
)

// SetLogger routes what the library has to say beyond errors (cleanup that
// failed, recovery work) to fn, process-wide (btrfslayer_set_log_fn); nil
// turns logging off, the default.  fn may be called from any goroutine that
// is inside a call, several at once; it must not call into this package.
// Once SetLogger returns, the old fn is not running and will not be called
// again.  A panic in fn crashes the program (it is raised again in a
// goroutine of its own: it must not unwind through the library).
func SetLogger(fn func(level int, msg string)) {
	loggerMu.Lock()
	defer loggerMu.Unlock()
	if fn == nil {
		logger.Store(nil)
		C.blgo_set_log(0)
		return
	}
	logger.Store(&fn)
	// registering the trampoline again waits, like any change, for the
	// calls of it that started before: those that may have loaded the
	// old fn
	C.blgo_set_log(1)
}

//export blgoLog
func blgoLog(level C.int, msg *C.char) {
	fn := logger.Load()
	if fn == nil {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			go panic(p)
		}
	}()
	(*fn)(int(level), C.GoString(msg))
}

// Version returns the version of the library actually loaded
// (btrfslayer_version).
func Version() string {
	return C.GoString(C.btrfslayer_version())
}
