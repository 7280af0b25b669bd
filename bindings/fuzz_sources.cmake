# The C++ sources a fuzz build reads ship in the wheel as mmrace/_src (about 2 MB: the
# top-level CMakeLists.txt, cpp_core/ without its tests, fuzz/), so that `mmrace fuzz`
# builds its harnesses from a pip-installed package, not only from a checkout
# (bindings/mmrace/fuzz_build.py; its SOURCE_PARTS is the same list).
install(FILES ${PROJECT_SOURCE_DIR}/CMakeLists.txt DESTINATION mmrace/_src)
install(FILES ${PROJECT_SOURCE_DIR}/cpp_core/CMakeLists.txt DESTINATION mmrace/_src/cpp_core)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/cpp_core/include ${PROJECT_SOURCE_DIR}/cpp_core/src
        DESTINATION mmrace/_src/cpp_core)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/fuzz DESTINATION mmrace/_src)
