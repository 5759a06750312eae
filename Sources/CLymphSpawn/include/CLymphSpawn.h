// glibc's GNU extensions for posix_spawn, pipe2 and pidfd_open, which Swift's Glibc module does not
// import (they need _GNU_SOURCE). Nothing else: the spawning itself is written in Swift.
#pragma once
#include <spawn.h>
#include <sys/types.h>

/// posix_spawn_file_actions_addclosefrom_np: the child closes every descriptor from `from` on.
int lymph_spawn_add_closefrom(posix_spawn_file_actions_t *actions, int from);
/// posix_spawn_file_actions_addchdir_np: the child changes to `path` before exec.
int lymph_spawn_add_chdir(posix_spawn_file_actions_t *actions, const char *path);
/// pipe2(2) with O_CLOEXEC, both ends numbered 3 or higher (so a dup2 onto 0-2 in the child
/// never meets an end already there). 0, or -1 with errno.
int lymph_pipe_cloexec(int fds[2]);
/// pidfd_open(2), close-on-exec; -1 with errno on failure (ENOSYS on kernels before 5.3).
int lymph_pidfd_open(pid_t pid);
