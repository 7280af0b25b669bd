#include <cstdio>

#include "ops/ops.hpp"

namespace mmrace::ops {

std::string errno_name(int e) {
    switch (e) {
        case EPERM_: return "EPERM";
        case EBADF_: return "EBADF";
        case ENOENT_: return "ENOENT";
        case EAGAIN_: return "EAGAIN";
        case ENOMEM_: return "ENOMEM";
        case EACCES_: return "EACCES";
        case EFAULT_: return "EFAULT";
        case EBUSY_: return "EBUSY";
        case ENODEV_: return "ENODEV";
        case EEXIST_: return "EEXIST";
        case EINVAL_: return "EINVAL";
    }
    return "E" + std::to_string(e);
}

std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

}  // namespace mmrace::ops
