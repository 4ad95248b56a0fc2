/* bcryptprimitives.dll for Wine 8, which lacks ProcessPrng.
 *
 * Rust's standard library (1.78 and later) calls ProcessPrng from bcryptprimitives.dll at
 * start-up to seed HashMap keys; Wine 8 ships no such export, so every Rust program dies
 * before main. This DLL exports it, filling the buffer through RtlGenRandom
 * (advapi32!SystemFunction036). Built by .ci/run with mingw and copied into the Wine
 * prefix's system32; it exists only so that the test suite can run under Wine. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
