// CKVM is header-only (ckvm.h): SwiftPM wants one source file per C target.
#include "ckvm.h"
