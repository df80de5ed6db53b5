# nncAddModel.cmake — nnc_add_model(): compile a .nn model as part of a build,
# the way Halide's add_halide_library does for Halide generators.
#
#   nnc_add_model(<target> <model.nn>
#                 [NAME <name>]            # file names; default: the model's stem
#                 [DEFINES NAME=INT ...]   # nnc -D NAME=INT
#                 [OPTIONS <option> ...]   # more nnc options: -O3, --cpu generic,
#                                          # --no-train, --target TRIPLE, ...
#                 [RUNTIME <library>])     # default nnc::nncrt
#
# A custom command runs `nnc <model.nn> -o <name>.o --header <name>.h` into
# ${CMAKE_CURRENT_BINARY_DIR}/nnc/<target>/, again whenever the model or nnc
# changes.  The object is added to <target>'s sources, that directory to
# its include path (so `#include "<name>.h"` works), and <target> links the
# runtime (nnc::nncrt, the shared libnncrt; pass RUNTIME nnc::nncrt_static
# for the archive).  The symbols are NAME_* after the model's `model NAME`
# line (its file's stem when it has none), whatever <name> is.
#
# nnc generates code for the CPU it runs on (--cpu native) unless OPTIONS
# say otherwise; pass `OPTIONS --cpu generic` (or a named CPU) for binaries
# that run on other machines of the same architecture.

function(nnc_add_model target model)
  cmake_parse_arguments(PARSE_ARGV 2 ARG "" "NAME;RUNTIME" "DEFINES;OPTIONS")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "nnc_add_model: unknown arguments: ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT TARGET ${target})
    message(FATAL_ERROR "nnc_add_model: '${target}' is not a target")
  endif()
  if(NOT TARGET nnc::nnc)
    message(FATAL_ERROR "nnc_add_model: no nnc::nnc; call find_package(nnc) first")
  endif()
  get_filename_component(model_path "${model}" ABSOLUTE
                         BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  if(NOT ARG_NAME)
    get_filename_component(ARG_NAME "${model}" NAME_WE)
  endif()
  if(NOT ARG_RUNTIME)
    set(ARG_RUNTIME nnc::nncrt)
  endif()

  set(dir "${CMAKE_CURRENT_BINARY_DIR}/nnc/${target}")
  set(object "${dir}/${ARG_NAME}.o")
  set(header "${dir}/${ARG_NAME}.h")
  set(defines "")
  foreach(d IN LISTS ARG_DEFINES)
    list(APPEND defines -D "${d}")
  endforeach()

  add_custom_command(
    OUTPUT "${object}" "${header}"
    COMMAND "${CMAKE_COMMAND}" -E make_directory "${dir}"
    COMMAND nnc::nnc "${model_path}" ${defines} ${ARG_OPTIONS}
            -o "${object}" --header "${header}"
    DEPENDS "${model_path}" "$<TARGET_FILE:nnc::nnc>"
    COMMENT "nnc: compiling ${model} into ${ARG_NAME}.o and ${ARG_NAME}.h"
    VERBATIM)
  set_source_files_properties("${object}" PROPERTIES
    EXTERNAL_OBJECT TRUE GENERATED TRUE)
  set_source_files_properties("${header}" PROPERTIES GENERATED TRUE)
  target_sources(${target} PRIVATE "${object}" "${header}")
  target_include_directories(${target} PRIVATE "${dir}")
  target_link_libraries(${target} PRIVATE ${ARG_RUNTIME})
endfunction()
