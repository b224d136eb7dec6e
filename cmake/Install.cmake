# Install.cmake — what `cmake --install build [--prefix P]` puts where.
#
#   P/lib/libhakmem.so{,.0,.0.x.y}        shared library (hakmem::hakmem)
#   P/lib/libhakmem.a                     static library (hakmem::hakmem_static)
#   P/include/*.h                         every public header in include/
#   P/lib/pkgconfig/hakmem.pc             pkg-config: -lhakmem
#   P/lib/cmake/hakmem/                   find_package(hakmem) config, version, targets
#   P/bin/hakmem                          wrapper: `hakmem cmd...` runs cmd with hakmem preloaded
#
# ("lib" is CMAKE_INSTALL_LIBDIR from GNUInstallDirs: lib/x86_64-linux-gnu for a
# Debian /usr prefix.)  The pkg-config file and the wrapper hold absolute paths, so
# they are written at install time from the prefix actually used, which
# `cmake --install --prefix` may change after configuring; DESTDIR is honoured.
#
# Included by the top-level CMakeLists.txt when HAK_SANITIZE is empty, after the
# targets hakmem and hakmem_static exist.  Settings it reads:
#   HAK_PC_LIBS_PRIVATE    Libs.private of hakmem.pc (a list; default -lurcu-bp -lpthread).
#                          Append e.g. -lurcu-bp here when libhakmem.a needs it.
#   HAKMEM_INSTALL_CMAKEDIR, HAKMEM_INSTALL_PKGCONFIGDIR (cache, relative to prefix)

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(HAKMEM_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/hakmem" CACHE STRING
  "where hakmem-config.cmake is installed (relative to the prefix)")
set(HAKMEM_INSTALL_PKGCONFIGDIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig" CACHE STRING
  "where hakmem.pc is installed (relative to the prefix)")
if(NOT DEFINED HAK_PC_LIBS_PRIVATE)
  set(HAK_PC_LIBS_PRIVATE -lurcu-bp -lpthread)
endif()

# The same names as the installed package, for projects that add_subdirectory(hakmem).
if(NOT TARGET hakmem::hakmem)
  add_library(hakmem::hakmem ALIAS hakmem)
  add_library(hakmem::hakmem_static ALIAS hakmem_static)
endif()

# ---- libraries and headers ------------------------------------------------------------
install(TARGETS hakmem hakmem_static
  EXPORT hakmemTargets
  LIBRARY  DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE  DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME  DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# The directory form is evaluated at install time, so headers added later need no
# re-configure.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")

# ---- CMake package: find_package(hakmem [0.1] CONFIG) ------------------------------------
install(EXPORT hakmemTargets
  NAMESPACE hakmem::
  FILE hakmem-targets.cmake
  DESTINATION ${HAKMEM_INSTALL_CMAKEDIR})

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/hakmem-config.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/hakmem-config.cmake
  INSTALL_DESTINATION ${HAKMEM_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR)
# SOVERSION is 0 for all of 0.x, so any 0.y satisfies a request for 0.x (x <= y).
write_basic_package_version_file(
  ${CMAKE_CURRENT_BINARY_DIR}/hakmem-config-version.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/hakmem-config.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/hakmem-config-version.cmake
  DESTINATION ${HAKMEM_INSTALL_CMAKEDIR})

# ---- pkg-config file and wrapper: written at install time ------------------------------
list(JOIN HAK_PC_LIBS_PRIVATE " " HAK_PC_LIBS_PRIVATE_STR)
set(HAK_INSTALL_GEN_DIR ${CMAKE_CURRENT_BINARY_DIR}/hakmem-install-gen)
set(HAK_PC_TEMPLATE ${CMAKE_CURRENT_LIST_DIR}/hakmem.pc.in)
set(HAK_WRAPPER_TEMPLATE ${PROJECT_SOURCE_DIR}/scripts/hakmem.sh.in)

# @VAR@ is filled in now (configure time); ${VAR} is evaluated by cmake_install.cmake.
set(_hak_install_code [=[
# hakmem: hakmem.pc and bin/hakmem for the prefix being installed to.
# (Variables are _hak_-prefixed: this runs in the scope of cmake_install.cmake.)
set(_hak_prefix "${CMAKE_INSTALL_PREFIX}")
if(NOT IS_ABSOLUTE "${_hak_prefix}")
  get_filename_component(_hak_prefix "${_hak_prefix}" ABSOLUTE)
endif()
string(REGEX REPLACE "(.)/+$" "\\1" _hak_prefix "${_hak_prefix}")
set(_hak_rel_libdir     [[@CMAKE_INSTALL_LIBDIR@]])
set(_hak_rel_includedir [[@CMAKE_INSTALL_INCLUDEDIR@]])
set(_hak_rel_bindir     [[@CMAKE_INSTALL_BINDIR@]])
set(_hak_rel_pcdir      [[@HAKMEM_INSTALL_PKGCONFIGDIR@]])
# One generation directory per prefix: concurrent installs do not share files.
string(MD5 _hak_tag "${_hak_prefix}")
set(_hak_gen [[@HAK_INSTALL_GEN_DIR@]])
set(_hak_gen "${_hak_gen}/${_hak_tag}")
foreach(_hak_d libdir includedir bindir pcdir)
  if(IS_ABSOLUTE "${_hak_rel_${_hak_d}}")
    set(_hak_abs_${_hak_d} "${_hak_rel_${_hak_d}}")
    set(_hak_pc_${_hak_d} "${_hak_rel_${_hak_d}}")
  else()
    set(_hak_abs_${_hak_d} "${_hak_prefix}/${_hak_rel_${_hak_d}}")
    set(_hak_pc_${_hak_d} "\${prefix}/${_hak_rel_${_hak_d}}")
  endif()
endforeach()
set(HAK_VERSION [[@PROJECT_VERSION@]])

# hakmem.pc: libdir and includedir relative to ${prefix} where they are under it.
set(HAK_PC_PREFIX "${_hak_prefix}")
set(HAK_PC_LIBDIR "${_hak_pc_libdir}")
set(HAK_PC_INCLUDEDIR "${_hak_pc_includedir}")
set(HAK_PC_LIBS_PRIVATE [[@HAK_PC_LIBS_PRIVATE_STR@]])
configure_file([[@HAK_PC_TEMPLATE@]] "${_hak_gen}/hakmem.pc" @ONLY)

# bin/hakmem: the absolute path of the library it preloads.
set(HAKMEM_WRAPPER_LIBDIR "${_hak_abs_libdir}")
set(HAKMEM_WRAPPER_LIBNAME [[$<TARGET_SONAME_FILE_NAME:hakmem>]])
configure_file([[@HAK_WRAPPER_TEMPLATE@]] "${_hak_gen}/hakmem" @ONLY)

# file(INSTALL) prepends $ENV{DESTDIR} and records the files in install_manifest.txt.
file(INSTALL DESTINATION "${_hak_abs_pcdir}" TYPE FILE FILES "${_hak_gen}/hakmem.pc")
file(INSTALL DESTINATION "${_hak_abs_bindir}" TYPE PROGRAM FILES "${_hak_gen}/hakmem")
]=])
string(CONFIGURE "${_hak_install_code}" _hak_install_code @ONLY)
install(CODE "${_hak_install_code}")
