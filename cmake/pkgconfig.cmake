# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs at install time (see install.cmake), where CMAKE_INSTALL_PREFIX is the
# prefix being installed to: writes libbtrfslayer.pc for it and installs it.
# In: BL_PC_IN, BL_PC_OUT, BL_LIBDIR, BL_INCLUDEDIR, BL_VERSION, BL_DESCRIPTION.
set(prefix "${CMAKE_INSTALL_PREFIX}")
foreach(_dir libdir includedir)
	string(TOUPPER "BL_${_dir}" _var)
	if(IS_ABSOLUTE "${${_var}}")
		set(${_dir} "${${_var}}")
	else()
		set(${_dir} "\${prefix}/${${_var}}")
	endif()
endforeach()
configure_file("${BL_PC_IN}" "${BL_PC_OUT}" @ONLY)

if(IS_ABSOLUTE "${BL_LIBDIR}")
	set(_pcdir "${BL_LIBDIR}/pkgconfig")
else()
	set(_pcdir "${CMAKE_INSTALL_PREFIX}/${BL_LIBDIR}/pkgconfig")
endif()
# file(INSTALL) honours DESTDIR and records the file in install_manifest.txt
file(INSTALL DESTINATION "${_pcdir}" TYPE FILE FILES "${BL_PC_OUT}")
