/*
 * os_hosted.c: main and the OS hooks for builds with a C runtime (mingw-w64
 * PE, glibc ELF).
 *
 * Usage: prog [iterations [interval_ms]]
 *   iterations  lines to print before exiting (default 600)
 *   interval_ms pause between lines (default 100; 0 = no pause)
 * The program always exits by itself, so a test never leaves it running.
 */
#include <stdio.h>
#include <stdlib.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <time.h>
#include <unistd.h>
#endif

#include "fixture.h"

void os_write(const char *buf, int len)
{
	fwrite(buf, 1, (size_t)len, stdout);
	fflush(stdout);
}

void os_sleep_ms(int ms)
{
#ifdef _WIN32
	Sleep((DWORD)ms);
#else
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
#endif
}

int os_pid(void)
{
#ifdef _WIN32
	return (int)GetCurrentProcessId();
#else
	return (int)getpid();
#endif
}

int main(int argc, char **argv)
{
	long long iterations = 600;
	int interval_ms = 100;

	if (argc > 1)
		iterations = strtoll(argv[1], NULL, 10);
	if (argc > 2)
		interval_ms = atoi(argv[2]);
	fixture_run(iterations, interval_ms);
	return 0;
}
