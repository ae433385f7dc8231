/* vmrun - run a VMM, watch its console output for markers, feed its stdin.
 *
 * Used inside the nested rig's L1 (tests/rig/run.sh, bench/boot-rig.sh).
 * Built statically by tests/rig/setup.sh.
 *
 *   vmrun [options] -- COMMAND [ARGS...]
 *
 *   -o FILE        write the command's stdout+stderr to FILE (default: discard);
 *                  stderr a whole line at a time, between stdout's lines
 *   -t SECONDS     timeout: SIGKILL the command, report, exit 124
 *   -d SIGNO       at the timeout, first send signal SIGNO (wisp: SIGUSR1, a
 *                  state dump) and keep logging its output for 2 s more
 *   -m MARK        report "vmrun: mark MARK <ns>" (ns since just before fork)
 *                  the first time an output line contains MARK
 *   -M MARK        like -m, then also sample the command's memory from
 *                  /proc/PID/status and report
 *                  "vmrun: mem MARK VmRSS=.. RssAnon=.. RssFile=.. RssShmem=..
 *                  MemfdRss=.." (kB; MemfdRss = resident memfd mappings)
 *   -s MARK=LINE   after MARK is seen (and reported/sampled), write LINE and
 *                  a newline to the command's stdin
 *   -e PREFIX      also copy each output line, "\r" removed, to stdout as
 *                  "PREFIX line" (live console for the rig's host side)
 *   -i FIFO        also forward whatever is written into FIFO (opened
 *                  read-write, so writers may come and go) to the command's
 *                  stdin (lets a script talk to the guest at any time)
 *
 * The command's stdin is a pipe that stays open until the command exits
 * (so a guest console never sees EOF). At the end vmrun reports
 * "vmrun: exit STATUS <ns>" (STATUS = exit code, or 128+signal) and exits
 * with STATUS; on timeout it reports "vmrun: timeout <seconds>", SIGKILLs the
 * command, waits at most 10 s for it to die (reporting its state if it does
 * not) and exits 124.
 * All reports go to stderr, one line each.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RULES 32

enum { R_MARK, R_MEM, R_SEND };

struct rule {
	int kind;
	const char *mark;
	const char *line; /* R_SEND */
	int done;
};

static struct rule rules[MAX_RULES];
static int nrules;
static long long t0;
static const char *echo_prefix;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: vmrun [-o FILE] [-t SEC] [-d SIGNO] [-m MARK] [-M MARK] "
		"[-s MARK=LINE] -- COMMAND [ARGS...]\n");
	exit(2);
}

static void add_rule(int kind, char *arg)
{
	if (nrules == MAX_RULES) {
		fprintf(stderr, "vmrun: too many rules\n");
		exit(2);
	}
	rules[nrules].kind = kind;
	rules[nrules].mark = arg;
	if (kind == R_SEND) {
		char *eq = strchr(arg, '=');

		if (!eq)
			usage();
		*eq = '\0';
		rules[nrules].line = eq + 1;
	}
	nrules++;
}

static void sample_mem(pid_t pid, const char *mark)
{
	char path[64], buf[256];
	long rss = -1, anon = -1, file = -1, shmem = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "vmrun: mem %s unavailable (%s)\n", mark,
			strerror(errno));
		return;
	}
	while (fgets(buf, sizeof(buf), f)) {
		sscanf(buf, "VmRSS: %ld", &rss);
		sscanf(buf, "RssAnon: %ld", &anon);
		sscanf(buf, "RssFile: %ld", &file);
		sscanf(buf, "RssShmem: %ld", &shmem);
	}
	fclose(f);

	/* Resident size of memfd mappings (guest RAM) from smaps: binaries
	 * living on the initramfs (tmpfs) also count as RssShmem, so
	 * VmRSS - MemfdRss is the better "VMM's own memory" figure. */
	long memfd = 0;
	int in_memfd = 0;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "r");
	if (f) {
		char line[512];
		long v;

		while (fgets(line, sizeof(line), f)) {
			unsigned long a, b;

			if (sscanf(line, "%lx-%lx ", &a, &b) == 2 &&
			    strchr(line, ' ')) {
				in_memfd = strstr(line, " /memfd:") != NULL;
				continue;
			}
			if (in_memfd && sscanf(line, "Rss: %ld", &v) == 1)
				memfd += v;
		}
		fclose(f);
	} else {
		memfd = -1;
	}
	fprintf(stderr,
		"vmrun: mem %s VmRSS=%ld RssAnon=%ld RssFile=%ld "
		"RssShmem=%ld MemfdRss=%ld\n",
		mark, rss, anon, file, shmem, memfd);
}

static void write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "vmrun: write to stdin: %s\n",
				strerror(errno));
			return;
		}
		s += w;
		n -= (size_t)w;
	}
}

static void report_proc(pid_t pid)
{
	char path[64], buf[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f) {
		while (fgets(buf, sizeof(buf), f))
			if (!strncmp(buf, "State:", 6) ||
			    !strncmp(buf, "Threads:", 8))
				fprintf(stderr, "vmrun: pid %d %s", (int)pid,
					buf);
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char tpath[320], comm[64] = "", wchan[128] = "";

		if (de->d_name[0] == '.')
			continue;
		snprintf(tpath, sizeof(tpath), "/proc/%d/task/%s/comm",
			 (int)pid, de->d_name);
		f = fopen(tpath, "r");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		snprintf(tpath, sizeof(tpath), "/proc/%d/task/%s/wchan",
			 (int)pid, de->d_name);
		f = fopen(tpath, "r");
		if (f) {
			if (fgets(wchan, sizeof(wchan), f))
				wchan[strcspn(wchan, "\n")] = '\0';
			fclose(f);
		}
		fprintf(stderr, "vmrun: pid %d thread %s (%s) wchan %s\n",
			(int)pid, de->d_name, comm, wchan);
	}
	if (d)
		closedir(d);
}

/* SIGKILL the command and wait up to 10 s for it to go away. */
static void kill_and_reap(pid_t pid)
{
	int status;

	report_proc(pid);
	kill(pid, SIGKILL);
	for (int i = 0; i < 100; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(100000);
	}
	fprintf(stderr, "vmrun: pid %d still there 10 s after SIGKILL\n",
		(int)pid);
	report_proc(pid);
}

/* Check one complete output line against the rules, in order. */
static void check_line(const char *line, pid_t pid, int in_fd)
{
	if (echo_prefix) {
		printf("%s %s\n", echo_prefix, line);
		fflush(stdout);
	}
	for (int i = 0; i < nrules; i++) {
		struct rule *r = &rules[i];

		if (r->done || !strstr(line, r->mark))
			continue;
		r->done = 1;
		switch (r->kind) {
		case R_MARK:
		case R_MEM:
			fprintf(stderr, "vmrun: mark %s %lld\n", r->mark,
				now_ns() - t0);
			if (r->kind == R_MEM)
				sample_mem(pid, r->mark);
			break;
		case R_SEND:
			write_all(in_fd, r->line, strlen(r->line));
			write_all(in_fd, "\n", 1);
			break;
		}
	}
}

/* The command's stderr (wisp's messages) arrives on its own pipe and goes
 * to the log a whole line at a time, and only between two lines of its
 * stdout (the guest's console): written as they came, a message landed in
 * the middle of a guest's line and broke the marker on it. A line held
 * for 500 ms (a console prompt without a newline) goes anyway. */
static int err_fd = -1, log_fd = -1, out_mid;
static char eline[8192], ehold[65536];
static size_t elen, ehlen;
static long long ehold_since;

static void err_flush(int force)
{
	if (!ehlen)
		return;
	if (!force && out_mid && now_ns() - ehold_since < 500000000LL)
		return;
	if (log_fd >= 0) {
		if (out_mid)
			write_all(log_fd, "\n", 1);
		write_all(log_fd, ehold, ehlen);
	}
	out_mid = 0;
	ehlen = 0;
}

/* A whole stderr line (in eline): its markers checked, held for the log. */
static void err_line_end(pid_t pid, int in_fd)
{
	eline[elen] = '\0';
	check_line(eline, pid, in_fd);
	if (ehlen + elen + 1 > sizeof(ehold))
		err_flush(1);
	if (!ehlen)
		ehold_since = now_ns();
	memcpy(ehold + ehlen, eline, elen);
	ehold[ehlen + elen] = '\n';
	ehlen += elen + 1;
	elen = 0;
}

/* Reads the stderr pipe; 0 at its end. */
static int err_read(pid_t pid, int in_fd)
{
	char buf[4096];
	ssize_t r = read(err_fd, buf, sizeof(buf));

	if (r < 0 && errno == EINTR)
		return 1;
	if (r <= 0) {
		if (elen)
			err_line_end(pid, in_fd);
		return 0;
	}
	for (ssize_t i = 0; i < r; i++) {
		char c = buf[i];

		if (c != '\n' && elen < sizeof(eline) - 1) {
			if (c != '\r')
				eline[elen++] = c;
			continue;
		}
		err_line_end(pid, in_fd);
		if (c != '\n' && c != '\r')
			eline[elen++] = c;
	}
	return 1;
}

int main(int argc, char **argv)
{
	const char *out_path = NULL, *fifo_path = NULL;
	double timeout = 0;
	int dump_sig = 0;
	int opt, in_pipe[2], out_pipe[2], err_pipe[2], out_fd = -1, status = 0,
						       exited = 0;
	char line[8192];
	size_t llen = 0;
	pid_t pid;

	while ((opt = getopt(argc, argv, "+o:t:d:m:M:s:e:i:")) != -1) {
		switch (opt) {
		case 'o':
			out_path = optarg;
			break;
		case 't':
			timeout = atof(optarg);
			break;
		case 'd':
			dump_sig = atoi(optarg);
			break;
		case 'm':
			add_rule(R_MARK, optarg);
			break;
		case 'M':
			add_rule(R_MEM, optarg);
			break;
		case 's':
			add_rule(R_SEND, optarg);
			break;
		case 'e':
			echo_prefix = optarg;
			break;
		case 'i':
			fifo_path = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();

	signal(SIGPIPE, SIG_IGN);
	if (out_path) {
		out_fd = open(out_path,
			      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (out_fd < 0) {
			fprintf(stderr, "vmrun: %s: %s\n", out_path,
				strerror(errno));
			return 2;
		}
	}
	int fifo_fd = -1;

	if (fifo_path) {
		fifo_fd = open(fifo_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (fifo_fd < 0) {
			fprintf(stderr, "vmrun: %s: %s\n", fifo_path,
				strerror(errno));
			return 2;
		}
	}
	if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) ||
	    pipe2(err_pipe, O_CLOEXEC)) {
		perror("vmrun: pipe");
		return 2;
	}

	t0 = now_ns();
	pid = fork();
	if (pid < 0) {
		perror("vmrun: fork");
		return 2;
	}
	if (pid == 0) {
		dup2(in_pipe[0], 0);
		dup2(out_pipe[1], 1);
		dup2(err_pipe[1], 2);
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "vmrun: exec %s: %s\n", argv[optind],
			strerror(errno));
		_exit(127);
	}
	close(in_pipe[0]);
	close(out_pipe[1]);
	close(err_pipe[1]);
	err_fd = err_pipe[0];
	log_fd = out_fd;

	long long deadline = timeout > 0 ? t0 + (long long)(timeout * 1e9) : 0;
	int out_open = 1, err_open = 1;

	while (out_open || err_open || !exited) {
		int wait_ms = 100;

		if (deadline) {
			long long left = (deadline - now_ns()) / 1000000;

			if (left <= 0 && dump_sig > 0 && !exited) {
				/* The dump reaches the log before the kill. */
				fprintf(stderr,
					"vmrun: timeout %g: signal %d for a "
					"state dump\n",
					timeout, dump_sig);
				kill(pid, dump_sig);
				dump_sig = 0;
				deadline = now_ns() + 2000000000LL;
				continue;
			}
			if (left <= 0) {
				if (llen) {
					line[llen] = '\0';
					check_line(line, pid, in_pipe[1]);
					if (out_fd >= 0)
						write_all(out_fd, "\n", 1);
				}
				out_mid = 0;
				err_flush(1);
				fprintf(stderr, "vmrun: timeout %g\n", timeout);
				if (!exited)
					kill_and_reap(pid);
				return 124;
			}
			if (left < wait_ms)
				wait_ms = (int)left;
		}
		if (out_open || err_open) {
			struct pollfd pf[3] = {
				{ .fd = out_open ? out_pipe[0] : -1,
				  .events = POLLIN },
				{ .fd = err_open ? err_fd : -1,
				  .events = POLLIN },
				{ .fd = fifo_fd, .events = POLLIN },
			};
			int n = poll(pf, fifo_fd >= 0 ? 3 : 2, wait_ms);
			struct pollfd p = pf[0];

			if (n > 0 && fifo_fd >= 0 && (pf[2].revents & POLLIN)) {
				char fbuf[512];
				ssize_t fr = read(fifo_fd, fbuf, sizeof(fbuf));

				if (fr > 0 && !exited)
					write_all(in_pipe[1], fbuf, (size_t)fr);
			}
			if (n > 0 && pf[1].revents &&
			    !err_read(pid, in_pipe[1]))
				err_open = 0;
			if (0) {
			}
			if (n > 0 && p.revents) {
				char buf[4096];
				ssize_t r = read(out_pipe[0], buf, sizeof(buf));

				if (r <= 0) {
					if (r < 0 && errno == EINTR)
						continue;
					out_open = 0;
				} else {
					if (out_fd >= 0)
						write_all(out_fd, buf,
							  (size_t)r);
					out_mid = buf[r - 1] != '\n';
					for (ssize_t i = 0; i < r; i++) {
						char c = buf[i];

						if (c == '\n' ||
						    llen == sizeof(line) - 1) {
							line[llen] = '\0';
							check_line(line, pid,
								   in_pipe[1]);
							llen = 0;
						}
						if (c != '\n' && c != '\r')
							line[llen++] = c;
					}
				}
			}
			err_flush(0);
		} else {
			usleep(wait_ms * 1000);
		}
		if (!exited && waitpid(pid, &status, WNOHANG) == pid)
			exited = 1;
		/* A grandchild may keep the pipes open: stop once the child is
		 * gone and nothing more arrives within the poll interval. */
		if (exited && (out_open || err_open)) {
			struct pollfd p[2] = {
				{ .fd = out_open ? out_pipe[0] : -1,
				  .events = POLLIN },
				{ .fd = err_open ? err_fd : -1,
				  .events = POLLIN },
			};

			if (poll(p, 2, 200) <= 0)
				out_open = err_open = 0;
		}
	}
	if (llen) {
		line[llen] = '\0';
		check_line(line, pid, in_pipe[1]);
	}
	err_flush(1);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) :
				       128 + WTERMSIG(status);
	fprintf(stderr, "vmrun: exit %d %lld\n", code, now_ns() - t0);
	return code;
}
