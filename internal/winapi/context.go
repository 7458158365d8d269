package winapi

import "unsafe"

// ContextFlags of the AMD64 CONTEXT record (winnt.h).
const (
	ContextAMD64          = 0x00100000
	ContextAMD64Control   = ContextAMD64 | 0x1 // SegSs, Rsp, SegCs, Rip, EFlags
	ContextAMD64Integer   = ContextAMD64 | 0x2 // Rax..R15
	ContextAMD64Segments  = ContextAMD64 | 0x4
	ContextAMD64Float     = ContextAMD64 | 0x8
	ContextAMD64Debug     = ContextAMD64 | 0x10
	ContextAMD64Full      = ContextAMD64Control | ContextAMD64Integer | ContextAMD64Float
	ContextAMD64All       = ContextAMD64Full | ContextAMD64Segments | ContextAMD64Debug
	ContextAMD64SizeBytes = 1232
)

// ContextFlags of the ARM64 CONTEXT record (winnt.h).
const (
	ContextARM64          = 0x00400000
	ContextARM64Control   = ContextARM64 | 0x1 // Fp, Lr, Sp, Pc, Cpsr
	ContextARM64Integer   = ContextARM64 | 0x2 // X0..X28
	ContextARM64Float     = ContextARM64 | 0x4
	ContextARM64Debug     = ContextARM64 | 0x8
	ContextARM64Full      = ContextARM64Control | ContextARM64Integer | ContextARM64Float
	ContextARM64SizeBytes = 912
)

// M128A is a 128-bit vector register as CONTEXT stores it.
type M128A struct {
	Low  uint64
	High int64
}

// XMMSaveArea32 is the FXSAVE image inside the AMD64 CONTEXT (512 bytes).
type XMMSaveArea32 struct {
	ControlWord    uint16
	StatusWord     uint16
	TagWord        uint8
	Reserved1      uint8
	ErrorOpcode    uint16
	ErrorOffset    uint32
	ErrorSelector  uint16
	Reserved2      uint16
	DataOffset     uint32
	DataSelector   uint16
	Reserved3      uint16
	MxCsr          uint32
	MxCsrMask      uint32
	FloatRegisters [8]M128A
	XmmRegisters   [16]M128A
	Reserved4      [96]byte
}

// CONTEXTAMD64 is winnt.h's CONTEXT for x64 (1232 bytes). Windows requires it
// 16-byte aligned: get one from NewContextAMD64, never declare it as a value.
type CONTEXTAMD64 struct {
	P1Home, P2Home, P3Home, P4Home, P5Home, P6Home uint64

	ContextFlags uint32
	MxCsr        uint32

	SegCs, SegDs, SegEs, SegFs, SegGs, SegSs uint16
	EFlags                                   uint32

	Dr0, Dr1, Dr2, Dr3, Dr6, Dr7 uint64

	Rax, Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi   uint64
	R8, R9, R10, R11, R12, R13, R14, R15     uint64
	Rip                                      uint64
	FltSave                                  XMMSaveArea32
	VectorRegister                           [26]M128A
	VectorControl                            uint64
	DebugControl                             uint64
	LastBranchToRip, LastBranchFromRip       uint64
	LastExceptionToRip, LastExceptionFromRip uint64
}

// CONTEXTARM64 is winnt.h's CONTEXT for ARM64 (912 bytes), 16-byte aligned:
// get one from NewContextARM64. X[29] is Fp, X[30] is Lr.
type CONTEXTARM64 struct {
	ContextFlags uint32
	Cpsr         uint32
	X            [31]uint64
	Sp           uint64
	Pc           uint64
	V            [32]M128A
	Fpcr         uint32
	Fpsr         uint32
	Bcr          [8]uint32
	Bvr          [8]uint64
	Wcr          [2]uint32
	Wvr          [2]uint64
}

// aligned16 returns a zeroed, 16-byte aligned block of n bytes. The block is
// carved from a byte slice, which the garbage collector never scans for
// pointers (CONTEXT holds none) and keeps alive through the interior pointer.
func aligned16(n uintptr) unsafe.Pointer {
	buf := make([]byte, n+15)
	p := unsafe.Pointer(unsafe.SliceData(buf))
	return unsafe.Add(p, (16-uintptr(p)%16)%16)
}

// NewContextAMD64 allocates a zeroed, 16-byte aligned CONTEXTAMD64 with
// ContextFlags set to flags.
func NewContextAMD64(flags uint32) *CONTEXTAMD64 {
	c := (*CONTEXTAMD64)(aligned16(unsafe.Sizeof(CONTEXTAMD64{})))
	c.ContextFlags = flags
	return c
}

// NewContextARM64 allocates a zeroed, 16-byte aligned CONTEXTARM64 with
// ContextFlags set to flags.
func NewContextARM64(flags uint32) *CONTEXTARM64 {
	c := (*CONTEXTARM64)(aligned16(unsafe.Sizeof(CONTEXTARM64{})))
	c.ContextFlags = flags
	return c
}

// SystemThreadInformation is ntdll's SYSTEM_THREAD_INFORMATION (x64 and
// ARM64 layout, 0x50 bytes): the per-thread records that follow each
// SYSTEM_PROCESS_INFORMATION of NtQuerySystemInformation(SystemProcessInformation).
type SystemThreadInformation struct {
	KernelTime      int64
	UserTime        int64
	CreateTime      int64
	WaitTime        uint32
	StartAddress    uintptr
	UniqueProcess   uintptr // ClientId.UniqueProcess
	UniqueThread    uintptr // ClientId.UniqueThread
	Priority        int32
	BasePriority    int32
	ContextSwitches uint32
	ThreadState     uint32
	WaitReason      uint32
}

// SystemProcessInformationSize is sizeof(SYSTEM_PROCESS_INFORMATION) on
// 64-bit Windows: the thread records start this many bytes into each entry.
const SystemProcessInformationSize = 0x100

// SystemInfo is SYSTEM_INFO (GetSystemInfo).
type SystemInfo struct {
	ProcessorArchitecture     uint16
	Reserved                  uint16
	PageSize                  uint32
	MinimumApplicationAddress uintptr
	MaximumApplicationAddress uintptr
	ActiveProcessorMask       uintptr
	NumberOfProcessors        uint32
	ProcessorType             uint32
	AllocationGranularity     uint32
	ProcessorLevel            uint16
	ProcessorRevision         uint16
}

// MemFree is MEMORY_BASIC_INFORMATION.State of an unallocated range
// (x/sys/windows declares MEM_COMMIT and MEM_RESERVE but not this one).
const MemFree = 0x10000
