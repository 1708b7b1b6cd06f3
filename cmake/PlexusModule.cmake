# One way to build every module: a static library from src/, public headers in include/,
# and one unit-test executable from tests/*_test.cpp labelled `unit`.
#
#   plexus_module(NAME core
#                 PUBLIC_DEPS Boost::headers
#                 PRIVATE_DEPS yaml-cpp
#                 TEST_DEPS ...)
#
# The library target is plexus_<name>, aliased as plexus::<name>.
function(plexus_module)
  cmake_parse_arguments(M "" "NAME" "PUBLIC_DEPS;PRIVATE_DEPS;TEST_DEPS" ${ARGN})
  set(target plexus_${M_NAME})
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/*.cpp)
  if(NOT sources)
    message(WARNING "module ${M_NAME} has no sources yet; skipped")
    return()
  endif()
  add_library(${target} STATIC ${sources})
  add_library(plexus::${M_NAME} ALIAS ${target})
  target_include_directories(${target}
    PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${target} PUBLIC ${M_PUBLIC_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  plexus_warnings(${target})

  if(PLEXUS_TESTS)
    file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/*_test.cpp)
    if(tests)
      plexus_test(NAME ${M_NAME}_test LABEL unit SOURCES ${tests}
                  DEPS ${target} ${M_TEST_DEPS}
                  INCLUDES ${CMAKE_CURRENT_SOURCE_DIR}/src)
    endif()
  endif()
endfunction()

# A GoogleTest executable registered with ctest, one ctest entry per test case.
function(plexus_test)
  cmake_parse_arguments(T "" "NAME;LABEL;TIMEOUT" "SOURCES;DEPS;INCLUDES" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_include_directories(${T_NAME} PRIVATE ${T_INCLUDES})
  plexus_warnings(${T_NAME})
  include(GoogleTest)
  gtest_discover_tests(${T_NAME}
    PROPERTIES LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT}
    DISCOVERY_TIMEOUT 30)
endfunction()

function(plexus_warnings target)
  # GCC 12 misreports Asio coroutine frames (operator new/delete pairs) as mismatched.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter -Wno-mismatched-new-delete)
endfunction()

# An executable made of a few source files (a daemon entry point, a shop service, a tool).
function(plexus_executable)
  cmake_parse_arguments(E "" "NAME;OUTPUT" "SOURCES;DEPS" ${ARGN})
  add_executable(${E_NAME} ${E_SOURCES})
  target_link_libraries(${E_NAME} PRIVATE ${E_DEPS})
  if(E_OUTPUT)
    set_target_properties(${E_NAME} PROPERTIES OUTPUT_NAME ${E_OUTPUT})
  endif()
  plexus_warnings(${E_NAME})
endfunction()
