/*
 * os_nocrt_win.c: entry point and OS hooks for the ARM64 PE, which is linked
 * without a C runtime (clang --target=aarch64-pc-windows-msvc -nostdlib):
 * only kernel32 (import library made from kernel32.def).
 *
 * Same usage as os_hosted.c: prog [iterations [interval_ms]].
 */
#include "fixture.h"

typedef void *HANDLE;
#define STD_OUTPUT_HANDLE ((unsigned long)-11)

__declspec(dllimport) HANDLE __stdcall GetStdHandle(unsigned long which);
__declspec(dllimport) int __stdcall WriteFile(HANDLE h, const void *buf, unsigned long len,
                                              unsigned long *written, void *overlapped);
__declspec(dllimport) void __stdcall Sleep(unsigned long ms);
__declspec(dllimport) unsigned long __stdcall GetCurrentProcessId(void);
__declspec(dllimport) char *__stdcall GetCommandLineA(void);
__declspec(dllimport) void __stdcall ExitProcess(unsigned int code);

void os_write(const char *buf, int len)
{
	unsigned long written = 0;
	WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), buf, (unsigned long)len, &written, 0);
}

void os_sleep_ms(int ms) { Sleep((unsigned long)ms); }

int os_pid(void) { return (int)GetCurrentProcessId(); }

/* next_number skips blanks and parses a decimal number at *p. */
static long long next_number(const char **p, long long fallback)
{
	const char *s = *p;
	long long v = 0;
	int any = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (*s++ - '0');
		any = 1;
	}
	*p = s;
	return any ? v : fallback;
}

void fixture_start(void)
{
	const char *p = GetCommandLineA();
	long long iterations;
	int interval_ms;

	/* Skip the program name, quoted or not. */
	if (*p == '"') {
		p++;
		while (*p != 0 && *p != '"')
			p++;
		if (*p == '"')
			p++;
	} else {
		while (*p != 0 && *p != ' ' && *p != '\t')
			p++;
	}
	iterations = next_number(&p, 600);
	interval_ms = (int)next_number(&p, 100);
	fixture_run(iterations, interval_ms);
	ExitProcess(0);
}
