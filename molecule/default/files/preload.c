/* A library a job plants for LD_PRELOAD (molecule default, trust.yml): it
 * appends one line naming its uid and program to PROOF whenever a process
 * loads it. Only the job's own processes may ever write one. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

__attribute__((constructor)) static void planted(void) {
	char exe[256] = {0}, line[512];
	readlink("/proc/self/exe", exe, sizeof exe - 1);
	int n = snprintf(line, sizeof line, "preload ran as uid %d in %s\n", (int)getuid(), exe);
	int fd = open(PROOF, O_WRONLY | O_APPEND | O_CREAT, 0666);
	if (fd >= 0) {
		write(fd, line, n);
		close(fd);
	}
}
