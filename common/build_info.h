#pragma once
// What was built: the version and build type every report states in its first lines, so a
// figure can be reproduced.

namespace prunekv {

const char* prunekv_version();  // "0.1.0"
const char* build_type();       // "Release", "Debug+sanitize=address,undefined", ...

}  // namespace prunekv
