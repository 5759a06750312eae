import Foundation

/// Standard input, output and error held open from the start. A process started with one of
/// them closed (`<&-`, some supervisors) would otherwise hand that number to the next file it
/// opens: an event loop's eventfd read as "stdin" (a hang), or the store taken for "stdout",
/// where events would be written over its pages. A closed one is opened on /dev/null the wrong
/// way round, so it still fails as a closed one does: stdin cannot be read, stdout and stderr
/// cannot be written.
enum StandardDescriptors {
    static func reserve() {
        for fd: Int32 in 0...2 where fcntl(fd, F_GETFD) == -1 && errno == EBADF {
            // The lowest free number: `fd` itself, as those below it are open by now.
            _ = open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY)
        }
    }
}
