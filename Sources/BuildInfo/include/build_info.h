// What this binary was built from. The Makefile passes the git commit and
// the Swift version as -D definitions; a plain `swift build` says "unknown".
#ifndef KVMLAB_BUILD_INFO_H
#define KVMLAB_BUILD_INFO_H

const char *kvmlab_build_commit(void);
const char *kvmlab_build_swift(void);

#endif
