//go:build eipclaim_testhooks

package main

import (
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
)

// In the test build only: wine's service manager runs services in session
// 1, not 0, so svc.IsWindowsService (the parent is services.exe in session
// 0) says no under wine, and the watch would run as a console program that
// never answers the service manager. The Windows tests run the service
// under wine's sc (cmd/eipclaim/wine_integration_test.go): this build also
// takes a services.exe parent in any other session as the service manager.
// A release build decides by svc.IsWindowsService alone.
func init() {
	isService = func() (bool, error) {
		if ok, err := svc.IsWindowsService(); ok || err != nil {
			return ok, err
		}
		return parentIs("services.exe")
	}
}

// parentIs reports whether this process's parent runs the executable name.
func parentIs(name string) (bool, error) {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return false, err
	}
	defer windows.CloseHandle(snap)
	names := map[uint32]string{}
	var parent uint32
	self := windows.GetCurrentProcessId()
	e := windows.ProcessEntry32{Size: uint32(unsafe.Sizeof(windows.ProcessEntry32{}))}
	for err = windows.Process32First(snap, &e); err == nil; err = windows.Process32Next(snap, &e) {
		names[e.ProcessID] = windows.UTF16ToString(e.ExeFile[:])
		if e.ProcessID == self {
			parent = e.ParentProcessID
		}
	}
	p, ok := names[parent]
	return ok && strings.EqualFold(p, name), nil
}
