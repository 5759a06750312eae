// What Swift's Glibc module does not import (glibc's posix_spawn extensions, pipe2 and pidfd_open
// need _GNU_SOURCE), and the one start posix_spawn cannot make: a child tied to the thread that
// starts it (`lymph_spawn_tied`).
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
/// Starts `path` as posix_spawn does with the attributes event mode uses: a process group of its
/// own, an empty signal mask and every signal at its default action, `in`, `out` and `err` as
/// descriptors 0-2 and no others, `dir` as its working directory. Unlike posix_spawn, the child
/// is also tied to the calling thread: it gets SIGKILL when that thread ends
/// (PR_SET_PDEATHSIG), so a plugin never outlives a lymph killed with SIGKILL. The thread must
/// outlive the child (event mode's thread waits for its process). Returns the pid, or -1 with
/// errno and, when the child got that far, `*step` naming what failed: 1 the parent-death
/// signal, 2 the process group, 3 the descriptors, 4 the working directory, 5 exec.
pid_t lymph_spawn_tied(const char *path, char *const argv[], char *const envp[], int in, int out, int err, const char *dir, int *step);
