# SPDX-License-Identifier: LGPL-2.1-or-later
# What `cmake --install` puts where (GNUInstallDirs), and the two ways a
# consumer finds it:
#   pkg-config   libbtrfslayer.pc: `pkg-config --cflags --libs libbtrfslayer`
#   CMake        find_package(btrfslayer 1 REQUIRED), then link
#                btrfslayer::btrfslayer
# Only the shared library is shipped, and its public header includes nothing
# but <stddef.h> and <stdint.h>: neither package makes a consumer find
# libbtrfsutil, libselinux or libmount (the .so records them as DT_NEEDED).
include(CMakePackageConfigHelpers)

set(BTRFSLAYER_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/btrfslayer)

install(TARGETS btrfslayer EXPORT btrfslayerTargets
	LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES include/btrfslayer.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES man/btrfslayer.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# The CMake package: relocatable, so `cmake --install --prefix DIR` works.
install(EXPORT btrfslayerTargets
	NAMESPACE btrfslayer::
	FILE btrfslayerTargets.cmake
	DESTINATION ${BTRFSLAYER_CMAKEDIR})
configure_package_config_file(cmake/btrfslayerConfig.cmake.in
	${CMAKE_CURRENT_BINARY_DIR}/btrfslayerConfig.cmake
	INSTALL_DESTINATION ${BTRFSLAYER_CMAKEDIR})
# SameMajorVersion: 1.x satisfies find_package(btrfslayer 1.y) for x >= y,
# never 2; the SONAME makes the same promise.
write_basic_package_version_file(
	${CMAKE_CURRENT_BINARY_DIR}/btrfslayerConfigVersion.cmake
	VERSION ${PROJECT_VERSION}
	COMPATIBILITY SameMajorVersion)
install(FILES
	${CMAKE_CURRENT_BINARY_DIR}/btrfslayerConfig.cmake
	${CMAKE_CURRENT_BINARY_DIR}/btrfslayerConfigVersion.cmake
	DESTINATION ${BTRFSLAYER_CMAKEDIR})

# The pkg-config file is written at install time, for the prefix installed
# to: a .pc made at configure time would name CMAKE_INSTALL_PREFIX even when
# `cmake --install --prefix DIR` puts everything under DIR.
install(CODE "
	set(BL_PC_IN [[${CMAKE_CURRENT_SOURCE_DIR}/libbtrfslayer.pc.in]])
	set(BL_PC_OUT [[${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/libbtrfslayer.pc]])
	set(BL_LIBDIR [[${CMAKE_INSTALL_LIBDIR}]])
	set(BL_INCLUDEDIR [[${CMAKE_INSTALL_INCLUDEDIR}]])
	set(BL_VERSION [[${PROJECT_VERSION}]])
	set(BL_DESCRIPTION [[${PROJECT_DESCRIPTION}]])
	include([[${CMAKE_CURRENT_SOURCE_DIR}/cmake/pkgconfig.cmake]])
")
