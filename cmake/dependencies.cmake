# Every dependency comes from a Debian 12 package (scripts/setup installs them).
find_package(Threads REQUIRED)
find_package(Boost 1.74 REQUIRED)           # headers only: lockfree
find_package(TBB REQUIRED)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 REQUIRED)
find_package(PkgConfig REQUIRED)

# The serial OpenBLAS: its pthread flavour spawns its own threads and oversubscribes the TBB
# arena. All flavours share one SONAME, so the serial one is found through its own pkg-config
# folder and pinned with an RPATH; blas_info.cpp verifies at run time which one is loaded.
set(PRUNEKV_OPENBLAS_SERIAL_DIR "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-serial")
if(EXISTS "${PRUNEKV_OPENBLAS_SERIAL_DIR}/pkgconfig/openblas.pc")
  set(ENV{PKG_CONFIG_PATH} "${PRUNEKV_OPENBLAS_SERIAL_DIR}/pkgconfig:$ENV{PKG_CONFIG_PATH}")
endif()
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
set(CMAKE_BUILD_RPATH "${OPENBLAS_LIBRARY_DIRS}")
set(CMAKE_INSTALL_RPATH "${OPENBLAS_LIBRARY_DIRS}")
