/*
 * bcryptprimitives.c: a stand-in for Windows' bcryptprimitives.dll under Wine 8.
 *
 * Go 1.22+ Windows programs take their random bytes from ProcessPrng, which
 * Wine 8 does not export, so every Go test binary dies at startup under it.
 * This DLL exports ProcessPrng and forwards to advapi32's RtlGenRandom
 * (SystemFunction036), which Wine implements. Build (make test does it):
 *
 *   x86_64-w64-mingw32-gcc -shared -O2 -s -o bcryptprimitives.dll \
 *       bcryptprimitives.c bcryptprimitives.def -ladvapi32
 *
 * and install it into the Wine prefix's system32 with
 * WINEDLLOVERRIDES=bcryptprimitives=n so Wine loads it instead of its own.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* RtlGenRandom takes a ULONG length: feed it in chunks so a SIZE_T request
 * larger than 4 GiB is not truncated. */
BOOL WINAPI ProcessPrng(PBYTE pbData, SIZE_T cbData)
{
    while (cbData > 0) {
        ULONG n = cbData > 0x10000000 ? 0x10000000 : (ULONG)cbData;
        if (!SystemFunction036(pbData, n))
            return FALSE;
        pbData += n;
        cbData -= n;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)inst;
    (void)reason;
    (void)reserved;
    return TRUE;
}
