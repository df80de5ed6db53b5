# demos.cmake — how the training demos are built, shared by
# examples/CMakeLists.txt (the demos at their real sizes) and
# tests/demos/CMakeLists.txt (tiny builds for the smoke test).
#
#   nnc_demo_program(<target> MODEL <file.nn> SOURCES <file.c>...
#                    [DEFINES NAME=INT...] [OPTIONS <nnc option>...]
#                    [OUTPUT_NAME <name>])
#
# runs the nnc built here on the model (again whenever the model or nnc
# changes) into <target>.nnc/STEM.o and STEM.h in the current build
# directory, and links an executable from the sources, that object, the
# helpers of examples/common (target nnc_demo_common) and libnncrt.  The
# sources `#include "STEM.h"`.  nnc_demo_common reads gzip files with zlib
# when CMake finds it, else through `gzip -dc`.
include_guard(GLOBAL)

find_package(ZLIB QUIET)
file(GLOB NNC_DEMO_COMMON_SRC CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.c)
add_library(nnc_demo_common STATIC ${NNC_DEMO_COMMON_SRC})
target_include_directories(nnc_demo_common PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(nnc_demo_common PUBLIC nncrt m)
if(ZLIB_FOUND)
  target_compile_definitions(nnc_demo_common PRIVATE DEMO_HAVE_ZLIB)
  target_link_libraries(nnc_demo_common PRIVATE ZLIB::ZLIB)
endif()

function(nnc_demo_program target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "MODEL;OUTPUT_NAME"
                        "SOURCES;DEFINES;OPTIONS")
  if(ARG_UNPARSED_ARGUMENTS OR NOT ARG_MODEL OR NOT ARG_SOURCES)
    message(FATAL_ERROR "nnc_demo_program(${target}): needs MODEL and SOURCES")
  endif()
  get_filename_component(model "${ARG_MODEL}" ABSOLUTE
                         BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  get_filename_component(stem "${model}" NAME_WE)
  set(dir "${CMAKE_CURRENT_BINARY_DIR}/${target}.nnc")
  set(object "${dir}/${stem}.o")
  set(header "${dir}/${stem}.h")
  set(defines "")
  foreach(d IN LISTS ARG_DEFINES)
    list(APPEND defines -D "${d}")
  endforeach()
  string(REPLACE ";" " " shown "${defines} ${ARG_OPTIONS}")
  add_custom_command(
    OUTPUT "${object}" "${header}"
    COMMAND "${CMAKE_COMMAND}" -E make_directory "${dir}"
    COMMAND nnc "${model}" ${defines} ${ARG_OPTIONS}
            -o "${object}" --header "${header}"
    DEPENDS "${model}" nnc
    COMMENT "nnc: ${stem}.nn ${shown} for ${target}"
    VERBATIM)
  set_source_files_properties("${object}" PROPERTIES
    EXTERNAL_OBJECT TRUE GENERATED TRUE)
  add_executable(${target} ${ARG_SOURCES} "${object}" "${header}")
  target_include_directories(${target} PRIVATE "${dir}")
  target_link_libraries(${target} PRIVATE nnc_demo_common nncrt m)
  if(ARG_OUTPUT_NAME)
    set_target_properties(${target} PROPERTIES OUTPUT_NAME ${ARG_OUTPUT_NAME})
  endif()
endfunction()
