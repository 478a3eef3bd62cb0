# -DOBSYNC_SANITIZE=address,undefined instruments every target.
if(OBSYNC_SANITIZE)
  add_compile_options(-fsanitize=${OBSYNC_SANITIZE} -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${OBSYNC_SANITIZE})
endif()
# -DOBSYNC_FUZZ=ON: the libraries get libFuzzer's coverage instrumentation
# too (the fuzz targets link the fuzzer itself, obsync_test.cmake); without
# it the fuzzers see only their own few edges and explore blindly.
if(OBSYNC_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
