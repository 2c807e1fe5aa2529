#include "build_info.h"

#ifndef KVMLAB_COMMIT
#define KVMLAB_COMMIT "unknown"
#endif
#ifndef KVMLAB_SWIFT
#define KVMLAB_SWIFT "unknown"
#endif

const char *kvmlab_build_commit(void) { return KVMLAB_COMMIT; }
const char *kvmlab_build_swift(void) { return KVMLAB_SWIFT; }
