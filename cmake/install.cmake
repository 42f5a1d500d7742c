# cmake --install puts the CLI, the libraries, the public headers and an exported CMake package
# in place, so another project can find_package(prunekv) and link prunekv::scheduler,
# prunekv::sim, prunekv::bench or prunekv::server.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
install(TARGETS prunekv_options prunekv_common prunekv_memory prunekv_model prunekv_policies prunekv_scheduler prunekv_sim prunekv_bench
        prunekv_server
  EXPORT prunekvTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS prunekv RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(dir common memory model policies scheduler sim bench server)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/prunekv
    FILES_MATCHING PATTERN "*.h")
endforeach()
install(EXPORT prunekvTargets NAMESPACE prunekv:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/prunekv)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/prunekvConfig.cmake.in
  ${PROJECT_BINARY_DIR}/prunekvConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/prunekv)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/prunekvConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/prunekvConfig.cmake ${PROJECT_BINARY_DIR}/prunekvConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/prunekv)
