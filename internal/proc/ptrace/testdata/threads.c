/* threads.c: the process the ptrace tests attach to (built with gcc at test time).
 *
 * usage: threads N MODE
 *   loop   N worker threads call value() in a loop and print its last result
 *          ("1\n") about every 5 ms; the main thread waits in pause().
 *   spawn  as loop, plus one thread creating short-lived threads without pause.
 *   exit   exit at once (the test attaches to the zombie).
 * "ready\n" is printed once every worker runs.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The function the test redirects: noipa keeps every call a real call. */
__attribute__((noinline, noipa)) int value(void) { return 1; }

static void *worker(void *arg) {
	(void)arg;
	for (;;) {
		int v = 0;
		for (int i = 0; i < 20000; i++)
			v = value();
		char buf[16];
		int n = snprintf(buf, sizeof buf, "%d\n", v);
		if (write(1, buf, n) != n)
			exit(3); /* the test closed the pipe */
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void *brief(void *arg) {
	(void)arg;
	volatile int v = value();
	(void)v;
	return NULL;
}

static void *spawner(void *arg) {
	(void)arg;
	for (;;) {
		pthread_t t;
		if (pthread_create(&t, NULL, brief, NULL) == 0)
			pthread_detach(t);
	}
	return NULL;
}

int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 4;
	const char *mode = argc > 2 ? argv[2] : "loop";
	if (strcmp(mode, "exit") == 0)
		return 0;
	for (int i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, worker, NULL) != 0)
			return 2;
	}
	if (strcmp(mode, "spawn") == 0) {
		pthread_t t;
		if (pthread_create(&t, NULL, spawner, NULL) != 0)
			return 2;
	}
	if (write(1, "ready\n", 6) != 6)
		return 3;
	for (;;)
		pause();
}
