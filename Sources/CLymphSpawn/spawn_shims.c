#define _GNU_SOURCE
#include "CLymphSpawn.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int lymph_pidfd_open(pid_t pid) {
#if defined(__linux__)
    // pidfd_open gives close-on-exec descriptors always.
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

static int above_stdio(int fd) {
    if (fd < 0 || fd > 2) return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int saved = errno;
    close(fd);
    errno = saved;
    return moved;
}

int lymph_pipe_cloexec(int fds[2]) {
    int raw[2];
    if (pipe2(raw, O_CLOEXEC) != 0) return -1;
    fds[0] = above_stdio(raw[0]);
    fds[1] = above_stdio(raw[1]);
    if (fds[0] < 0 || fds[1] < 0) {
        int saved = errno;
        if (fds[0] >= 0) close(fds[0]);
        if (fds[1] >= 0) close(fds[1]);
        // Closed here: the caller must not close these numbers again.
        fds[0] = -1;
        fds[1] = -1;
        errno = saved;
        return -1;
    }
    return 0;
}

// Lymph runs on Linux with glibc 2.34 or later (closefrom and these extensions; the Debian 12 this
// project builds on has 2.36). Elsewhere these report ENOSYS, and event-mode plugins fail to
// start with that reason.
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
int lymph_spawn_add_closefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int lymph_spawn_add_chdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

pid_t lymph_spawn_tied(const char *path, char *const argv[], char *const envp[], int in, int out, int err, const char *dir, int *step) {
    // Every signal blocked across vfork, as glibc's posix_spawn does: the child shares the
    // parent's memory until exec, and a handler of the parent's must never run in it.
    sigset_t all, old;
    sigfillset(&all);
    int rc = pthread_sigmask(SIG_SETMASK, &all, &old);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    // Written by the child before it exits (it shares this memory until then), read after.
    volatile int failed = 0;
    volatile int at = 0;
    pid_t parent = getpid();
    pid_t pid = vfork();
    if (pid == 0) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++) {
            if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, NULL);
        }
        at = 1;
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) goto fail;
        // The parent was gone before the signal was set: nobody would stop this child.
        if (getppid() != parent) {
            errno = ESRCH;
            goto fail;
        }
        at = 2;
        if (setpgid(0, 0) != 0) goto fail;
        at = 3;
        if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) goto fail;
        closefrom(3);
        at = 4;
        if (chdir(dir) != 0) goto fail;
        at = 5;
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(path, argv, envp);
    fail:
        failed = errno ? errno : EINVAL;
        _exit(127);
    }
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        errno = saved;
        return -1;
    }
    if (failed != 0) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        *step = at;
        errno = failed;
        return -1;
    }
    return pid;
}
#else
int lymph_spawn_add_closefrom(posix_spawn_file_actions_t *actions, int from) {
    (void)actions; (void)from;
    return ENOSYS;
}

int lymph_spawn_add_chdir(posix_spawn_file_actions_t *actions, const char *path) {
    (void)actions; (void)path;
    return ENOSYS;
}

pid_t lymph_spawn_tied(const char *path, char *const argv[], char *const envp[], int in, int out, int err, const char *dir, int *step) {
    (void)path; (void)argv; (void)envp; (void)in; (void)out; (void)err; (void)dir;
    *step = 0;
    errno = ENOSYS;
    return -1;
}
#endif
