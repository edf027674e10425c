# CMake toolchain: Windows x86-64 with Debian's MinGW-w64 cross compiler, POSIX
# thread model (std::thread, std::mutex): package g++-mingw-w64-x86-64-posix.
#   cmake -S . -B build-mingw -DCMAKE_TOOLCHAIN_FILE=tools/mingw-w64.cmake ...
# tools/mingw-check.sh uses it with -DSQLPOST_PORTABLE_ONLY=ON (Debian packages no
# SQLite, libcurl, OpenSSL, zstd or spdlog for MinGW; docs/windows.md says where a
# full Windows build gets them).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(SQLPOST_MINGW_TRIPLE x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${SQLPOST_MINGW_TRIPLE}-gcc-posix)
set(CMAKE_CXX_COMPILER ${SQLPOST_MINGW_TRIPLE}-g++-posix)
set(CMAKE_RC_COMPILER ${SQLPOST_MINGW_TRIPLE}-windres)

# Libraries and headers only from the MinGW sysroot (plus what a project adds),
# never from the build machine's /usr/include or /usr/lib.
set(CMAKE_FIND_ROOT_PATH /usr/${SQLPOST_MINGW_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# The GCC runtime (libstdc++, libgcc, winpthread) linked in: an .exe runs on its
# own, on Windows and under Wine, without DLLs copied beside it.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
