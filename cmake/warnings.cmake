# Applied to every prunekv target through prunekv_options.
add_library(prunekv_options INTERFACE)
target_compile_options(prunekv_options INTERFACE -Wall -Wextra)
if(PRUNEKV_WERROR)
  target_compile_options(prunekv_options INTERFACE -Werror)
endif()
if(PRUNEKV_NATIVE)
  target_compile_options(prunekv_options INTERFACE -march=native)
endif()
# Release builds compile debug/trace logging out of hot paths.
target_compile_definitions(prunekv_options INTERFACE
  $<IF:$<CONFIG:Debug>,SPDLOG_ACTIVE_LEVEL=SPDLOG_LEVEL_TRACE,SPDLOG_ACTIVE_LEVEL=SPDLOG_LEVEL_INFO>)
if(PRUNEKV_SANITIZE)
  target_compile_options(prunekv_options INTERFACE -fsanitize=${PRUNEKV_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(prunekv_options INTERFACE -fsanitize=${PRUNEKV_SANITIZE})
  # GCC 12 warns (-Wtsan) that TSan does not model the std::atomic_thread_fence Boost.Asio's
  # fenced blocks use; that is a note about the tool, not our code, and -Werror must not stop
  # the TSan build on it.
  if(PRUNEKV_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(prunekv_options INTERFACE -Wno-tsan)
  endif()
endif()
target_include_directories(prunekv_options INTERFACE
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}> $<INSTALL_INTERFACE:include/prunekv>)

# prunekv_module(NAME DEPS...): one static library per folder, sources globbed, linking only
# what the dependency direction allows
# (common <- memory <- model, policies <- scheduler <- sim, bench <- cli, server).
function(prunekv_module name)
  file(GLOB _srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  add_library(prunekv_${name} STATIC ${_srcs})
  add_library(prunekv::${name} ALIAS prunekv_${name})
  set_target_properties(prunekv_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON EXPORT_NAME ${name})
  target_link_libraries(prunekv_${name} PUBLIC prunekv_options ${ARGN})
endfunction()
