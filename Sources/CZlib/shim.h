// The system's zlib (Debian: zlib1g-dev), for reading gzip input.
#include <zlib.h>
