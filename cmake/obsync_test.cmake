# One line per test, as nng's nng_test() does: label and timeout set here.
function(obsync_unit_test name)
  add_executable(test_${name} ${CMAKE_SOURCE_DIR}/tests/unit/test_${name}.c)
  target_link_libraries(test_${name} PRIVATE obsyncd_api
                        obsync_client_static PkgConfig::CMOCKA)
  # tests/support: fixtures the unit tests share with the fuzz targets
  target_include_directories(test_${name} PRIVATE
    ${CMAKE_SOURCE_DIR}/tests/support)
  target_compile_definitions(test_${name} PRIVATE
    OBSYNC_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  obsync_warnings(test_${name})
  add_test(NAME unit.${name} COMMAND test_${name})
  set_tests_properties(unit.${name} PROPERTIES LABELS unit TIMEOUT 120
    ENVIRONMENT "OBSYNC_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endfunction()

# Fuzz target: with OBSYNC_FUZZ a libFuzzer binary, else the replay main that
# runs the committed corpus as a plain test.
function(obsync_fuzz name)
  set(src ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_${name}.c)
  if(OBSYNC_FUZZ)
    add_executable(fuzz_${name} ${src})
    target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  else()
    add_executable(fuzz_${name} ${src} ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c)
  endif()
  target_link_libraries(fuzz_${name} PRIVATE obsyncd_api obsync_client_static)
  target_include_directories(fuzz_${name} PRIVATE
    ${CMAKE_SOURCE_DIR}/tests/support)
  if(OBSYNC_FUZZ) # replay only: libFuzzer would grow the source corpus
    add_test(NAME fuzz.${name} COMMAND fuzz_${name} -runs=0
             ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${name})
  else()
    add_test(NAME fuzz.${name} COMMAND fuzz_${name}
             ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${name})
  endif()
  set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz TIMEOUT 300)
endfunction()

function(obsync_integration_test name)
  add_test(NAME integration.${name}
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/integration/t_${name}.py)
  set_tests_properties(integration.${name} PROPERTIES LABELS integration
    TIMEOUT 600 SKIP_RETURN_CODE 77 ENVIRONMENT
    "OBSYNCD=$<TARGET_FILE:obsyncd>;OBSYNC=$<TARGET_FILE:obsync_cli>;OBSYNC_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endfunction()
