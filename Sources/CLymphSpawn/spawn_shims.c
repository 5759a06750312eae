#define _GNU_SOURCE
#include "CLymphSpawn.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

// Lymph runs on Linux with glibc 2.34 or later (the Debian 12 this project builds on has 2.36).
// Elsewhere these report ENOSYS, and event-mode plugins fail to start with that reason.
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
int lymph_spawn_add_closefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int lymph_spawn_add_chdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
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
