# nncInstall.cmake — what `cmake --install` puts under the prefix, besides
# runtime/'s own rules (lib/libnncrt.a, lib/libnncrt.so*, include/nnc.h):
#
#   bin/nnc                           the compiler
#   lib/cmake/nnc/nncConfig.cmake     the CMake package (nncConfig.cmake.in)
#   lib/cmake/nnc/nncConfigVersion.cmake
#   lib/cmake/nnc/nncAddModel.cmake   nnc_add_model()
#   lib/pkgconfig/nncrt.pc            pkg-config file of the runtime
#
# Included from the top-level CMakeLists.txt.  The package is written by
# hand rather than exported, so that the build tree's targets keep their
# source-tree include paths; every path in it is relative to its own
# location, so the prefix given to `cmake --install --prefix` is the one
# that counts.
include(CMakePackageConfigHelpers)

# nnc links LLVM from its own directory (/usr/lib/llvm-16/lib); keep that
# directory on the installed binary's run path.
set_target_properties(nnc PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE)
install(TARGETS nnc RUNTIME DESTINATION bin)

set(NNC_RUNTIME_SHARED_FILE "libnncrt.so.${PROJECT_VERSION}")
set(NNC_RUNTIME_SONAME "libnncrt.so.${PROJECT_VERSION_MAJOR}")
get_filename_component(NNC_OPENBLAS_DIR "${OPENBLAS_LIB}" DIRECTORY)
set(nnc_package_dir "${CMAKE_BINARY_DIR}/package")
configure_package_config_file(
  "${CMAKE_CURRENT_LIST_DIR}/nncConfig.cmake.in"
  "${nnc_package_dir}/nncConfig.cmake"
  INSTALL_DESTINATION lib/cmake/nnc)
# 0.x: a new minor version may change the generated API.
write_basic_package_version_file(
  "${nnc_package_dir}/nncConfigVersion.cmake"
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  "${nnc_package_dir}/nncConfig.cmake"
  "${nnc_package_dir}/nncConfigVersion.cmake"
  "${CMAKE_CURRENT_LIST_DIR}/nncAddModel.cmake"
  DESTINATION lib/cmake/nnc)

configure_file("${CMAKE_CURRENT_LIST_DIR}/nncrt.pc.in"
               "${nnc_package_dir}/nncrt.pc" @ONLY)
install(FILES "${nnc_package_dir}/nncrt.pc" DESTINATION lib/pkgconfig)
